//! The old backend's later contract (issue 23) through `http::dispatch`: the headers of every
//! answer, the correlation id, what a refused access token is told, unknown query parameters, and
//! the answer to requests no route matches.

use crate::support::{PASSWORD, TestApp, TestResponse, event, unique_username};
use lambda_http::{Context, Request, RequestExt};
use shared::handlers::{DOCS, HEALTH, LIST_JOBS, LOGIN, LOGOUT, ME, ROOT, SUBMIT_JOB, UNMATCHED};

/// `request` as Lambda hands it over, with its request id.
fn invoked(request: Request, request_id: &str) -> Request {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    request.with_lambda_context(context)
}

fn assert_headers_of_every_answer(response: &TestResponse, what: &str) {
    assert_eq!(response.header("x-frame-options"), Some("DENY"), "{what}");
    let permissions = response.header("permissions-policy").unwrap_or_default();
    for feature in [
        "geolocation=()",
        "camera=()",
        "microphone=()",
        "payment=()",
        "usb=()",
    ] {
        assert!(
            permissions.split(", ").any(|each| each == feature),
            "{what}: {permissions}"
        );
    }
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(
        response.header("strict-transport-security"),
        Some("max-age=63072000; includeSubDomains")
    );
    assert!(
        response
            .header("content-security-policy")
            .is_some_and(|policy| policy.starts_with("default-src 'none'")),
        "{what}"
    );
}

#[tokio::test]
async fn every_kind_of_answer_carries_the_frame_and_permissions_policies_and_a_correlation_id() {
    let app = TestApp::new().await;
    let limited = TestApp::with_settings(&[("RATE_LIMIT_READ_PER_MIN", "1")]).await;
    let ip = unique_ip();
    let username = unique_username();
    assert_eq!(app.register(&username).await.status(), 201);
    for _ in 0..5 {
        assert_eq!(app.login(&username, "Wrong-Password-1").await.status(), 401);
    }
    let login = |password: &str| {
        let body = serde_json::json!({"username": username, "password": password});
        event("POST", "/api/auth/login").json(&body).build()
    };
    let root = || event("GET", "/").source_ip(&ip).build();
    assert_eq!(limited.call(&ROOT, root()).await.status(), 200);
    let answers = [
        ("200", &app, &HEALTH, event("GET", "/health").build()),
        ("401", &app, &ME, event("GET", "/api/auth/me").build()),
        ("423", &app, &LOGIN, login(PASSWORD)),
        ("429", &limited, &ROOT, root()),
        ("docs page", &app, &DOCS, event("GET", "/docs").build()),
    ];
    for (what, app, endpoint, request) in answers {
        let request_id = uuid::Uuid::new_v4().to_string();
        let response = app.call(endpoint, invoked(request, &request_id)).await;
        assert_eq!(
            response.status(),
            match what {
                "docs page" => 200,
                status => status.parse().unwrap(),
            },
            "{what}: {}",
            response.text()
        );
        assert_headers_of_every_answer(&response, what);
        assert_eq!(
            response.header("x-correlation-id"),
            Some(request_id.as_str()),
            "{what}: the Lambda request id without a client's own"
        );
    }
    let docs = app.call(&DOCS, event("GET", "/docs").build()).await;
    let permissions = docs.header("permissions-policy").unwrap();
    assert!(
        permissions.contains("clipboard-write=(self)"),
        "{permissions}"
    );
    let json = app.call(&HEALTH, event("GET", "/health").build()).await;
    let permissions = json.header("permissions-policy").unwrap();
    assert!(permissions.contains("clipboard-write=()"), "{permissions}");
}

#[tokio::test]
async fn a_well_formed_client_correlation_id_is_answered_back_and_any_other_replaced() {
    let app = TestApp::new().await;
    let longest = "x".repeat(64);
    let too_long = "x".repeat(65);
    for (sent, answered) in [
        ("checkout-7.retry_2", "checkout-7.retry_2"),
        (longest.as_str(), longest.as_str()),
        (too_long.as_str(), "lambda-request-1"),
        ("", "lambda-request-1"),
        ("two words", "lambda-request-1"),
        ("a/b", "lambda-request-1"),
        ("{\"forged\":1}", "lambda-request-1"),
    ] {
        let request = event("GET", "/health")
            .header("x-correlation-id", sent)
            .build();
        let response = app
            .call(&HEALTH, invoked(request, "lambda-request-1"))
            .await;
        assert_eq!(
            response.header("x-correlation-id"),
            Some(answered),
            "{sent:?}"
        );
    }
}

#[tokio::test]
async fn the_correlation_id_is_exposed_to_allowed_origins() {
    let app = TestApp::with_settings(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")]).await;
    let request = event("GET", "/health")
        .header("origin", "https://app.example.com")
        .build();
    let response = app.call(&HEALTH, invoked(request, "r-1")).await;
    let exposed = response.header("access-control-expose-headers").unwrap();
    assert!(
        exposed.split(", ").any(|name| name == "X-Correlation-ID"),
        "{exposed}"
    );
}

/// A source IP no other test uses, so that its counters are its own.
fn unique_ip() -> String {
    let [a, b, c, ..] = *uuid::Uuid::new_v4().as_bytes();
    format!("10.{a}.{b}.{c}")
}

const EXPIRED_CHALLENGE: &str =
    "Bearer error=\"invalid_token\", error_description=\"The access token expired\"";

/// An access token of the token's user and session that expired an hour ago.
async fn expired_copy(app: &TestApp, token: &str) -> String {
    let keys = app.state.jwt_keys().unwrap();
    let claims = keys.verify(token).unwrap();
    let user = app.state.store.user(claims.sub).await.unwrap().unwrap();
    let two_hours_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
    keys.issue(
        &user,
        claims.sid,
        two_hours_ago,
        shared::domain::Assurance::Password,
    )
    .token
}

#[tokio::test]
async fn an_expired_token_says_so_apart_from_a_missing_and_an_invalid_one() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let me = |token: Option<&str>| {
        let request = event("GET", "/api/auth/me");
        match token {
            Some(token) => request.bearer(token).build(),
            None => request.build(),
        }
    };
    let expired = app
        .call(&ME, me(Some(&expired_copy(&app, &token).await)))
        .await;
    assert_eq!(expired.status(), 401, "{}", expired.text());
    assert_eq!(expired.header("www-authenticate"), Some(EXPIRED_CHALLENGE));
    assert_eq!(expired.json()["detail"], "Token has expired");
    assert_eq!(
        expired.header("content-type"),
        Some("application/problem+json")
    );

    // RFC 6750, section 3.1: without credentials, no error code.
    let missing = app.call(&ME, me(None)).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert_eq!(missing.json()["detail"], "Not authenticated");

    let (header, _) = token.split_once('.').unwrap();
    let malformed = ["garbage".to_owned(), format!("{header}.e30.c2ln")];
    for bad in &malformed {
        let response = app.call(&ME, me(Some(bad))).await;
        assert_eq!(response.status(), 401, "{bad}");
        assert_eq!(
            response.header("www-authenticate"),
            Some("Bearer error=\"invalid_token\""),
            "{bad}"
        );
        assert_eq!(response.json()["detail"], "Could not validate credentials");
    }
    let logout = event("POST", "/api/auth/logout").bearer(&token).build();
    assert_eq!(app.call(&LOGOUT, logout).await.status(), 200);
    let revoked = app.call(&ME, me(Some(&token))).await;
    assert_eq!(revoked.status(), 401);
    assert_eq!(
        revoked.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    assert_eq!(revoked.json()["detail"], "Could not validate credentials");
}

#[tokio::test]
async fn a_public_route_answers_whatever_state_a_token_is_in() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let expired = expired_copy(&app, &token).await;
    for bearer in [expired.as_str(), "garbage"] {
        let request = event("GET", "/").bearer(bearer).build();
        assert_eq!(app.call(&ROOT, request).await.status(), 200, "{bearer}");
    }
    // Logging out with an expired token ends nothing, and says it succeeded.
    let logout = event("POST", "/api/auth/logout").bearer(&expired).build();
    assert_eq!(app.call(&LOGOUT, logout).await.status(), 200);
    let me = event("GET", "/api/auth/me").bearer(&token).build();
    assert_eq!(app.call(&ME, me).await.status(), 200);
}

#[tokio::test]
async fn an_unknown_query_parameter_is_refused_naming_it_and_the_ones_taken() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let job = serde_json::json!({"name": "render", "sla_tier": "gold", "cpu_required": 1, "memory_required": 4});
    let submitted = app
        .call(
            &SUBMIT_JOB,
            event("POST", "/api/scheduler/jobs")
                .bearer(&token)
                .json(&job)
                .build(),
        )
        .await;
    assert_eq!(submitted.status(), 201, "{}", submitted.text());
    let list = |query: &str| {
        event("GET", "/api/scheduler/jobs")
            .bearer(&token)
            .query(query)
            .build()
    };
    let typo = app.call(&LIST_JOBS, list("stauts=pending")).await;
    assert_eq!(typo.status(), 422, "{}", typo.text());
    assert_eq!(
        typo.header("content-type"),
        Some("application/problem+json")
    );
    let body = typo.json();
    assert_eq!(body["detail"], "Invalid fields: stauts");
    assert_eq!(
        body["errors"],
        serde_json::json!([{
            "field": "stauts",
            "message": "is not a query parameter of GET /api/scheduler/jobs; it takes status, limit, cursor"
        }])
    );
    let several = app
        .call(&LIST_JOBS, list("limit=2&x=1&stauts=pending&x=2"))
        .await;
    let fields: Vec<_> = several.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["stauts", "x"], "{}", several.text());
    for known in [
        "",
        "status=pending",
        "limit=1&cursor=",
        "status=pending&limit=5",
    ] {
        let response = app.call(&LIST_JOBS, list(known)).await;
        assert_eq!(response.status(), 200, "{known}: {}", response.text());
    }
    // A route that takes none says so.
    let health = app
        .call(&HEALTH, event("GET", "/health").query("verbose=1").build())
        .await;
    assert_eq!(health.status(), 422);
    assert_eq!(
        health.json()["errors"][0]["message"],
        "is not a query parameter of GET /health; it takes none"
    );
    // Before the handler: a write with a stray parameter writes nothing.
    let stray = app
        .call(
            &SUBMIT_JOB,
            event("POST", "/api/scheduler/jobs")
                .bearer(&token)
                .query("dry_run=true")
                .json(&job)
                .build(),
        )
        .await;
    assert_eq!(stray.status(), 422);
    let listed = app.call(&LIST_JOBS, list("")).await.json();
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn an_unmatched_request_is_404_or_405_with_allow_in_the_problem_shape() {
    let app = TestApp::new().await;
    for (method, path, allowed) in [
        ("GET", "/api/auth/login", Some("POST")),
        ("PUT", "/api/scheduler/jobs", Some("GET, POST")),
        (
            "PATCH",
            "/api/keys/0190b1c5-0000-7000-8000-000000000000",
            Some("DELETE, GET"),
        ),
        ("HEAD", "/health", Some("GET")),
        ("OPTIONS", "/api/auth/me", Some("GET")),
        ("POST", "/docs/app.js", Some("GET")),
        ("GET", "/api/auth/login/", None),
        ("GET", "/api/schedulr/jobs", None),
        ("GET", "/api/scheduler/jobs/", None),
        ("GET", "/floor", None),
        ("GET", "/lambda-url/floor/", None),
        ("DELETE", "/", Some("GET")),
        ("GET", "//", None),
    ] {
        let request_id = uuid::Uuid::new_v4().to_string();
        let request = invoked(event(method, path).build(), &request_id);
        let response = app.call(&UNMATCHED, request).await;
        let what = format!("{method} {path}");
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        let body = response.json();
        match allowed {
            Some(allowed) => {
                assert_eq!(response.status(), 405, "{what}: {}", response.text());
                assert_eq!(response.header("allow"), Some(allowed), "{what}");
                assert_eq!(body["title"], "Method Not Allowed");
                assert!(
                    body["detail"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("{method} is not allowed on /")),
                    "{what}: {body}"
                );
            }
            None => {
                assert_eq!(response.status(), 404, "{what}: {}", response.text());
                assert_eq!(response.header("allow"), None, "{what}");
                assert_eq!(
                    body["detail"],
                    "No route matches this path; GET / lists every route"
                );
                assert!(
                    !response.text().contains("floor"),
                    "no internal binary named"
                );
            }
        }
        assert_eq!(body["status"], response.status());
        assert_headers_of_every_answer(&response, &what);
        assert_eq!(
            response.header("x-correlation-id"),
            Some(request_id.as_str())
        );
        assert!(
            response.header("x-ratelimit-limit").is_some(),
            "{what}: rate limited"
        );
    }
    // Whatever the query string: there is nothing to ask it for.
    let typo = app
        .call(
            &UNMATCHED,
            event("GET", "/api/schedulr/jobs").query("stauts=x").build(),
        )
        .await;
    assert_eq!(typo.status(), 404);
}

#[tokio::test]
async fn unmatched_requests_count_against_the_source_ip_whatever_token_they_carry() {
    let app = TestApp::new().await;
    let limited = TestApp::with_settings(&[("RATE_LIMIT_READ_PER_MIN", "2")]).await;
    let ip = unique_ip();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (_, token) = app.user_with_token().await;
        let request = event("GET", "/nowhere")
            .source_ip(&ip)
            .bearer(&token)
            .build();
        statuses.push(limited.call(&UNMATCHED, request).await.status());
    }
    assert_eq!(statuses, [404, 404, 429]);
    let other_ip = event("GET", "/nowhere").source_ip(&unique_ip()).build();
    assert_eq!(limited.call(&UNMATCHED, other_ip).await.status(), 404);
}
