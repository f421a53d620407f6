//! In-process harness: handlers called with API Gateway HTTP API v2 events, against the local
//! DynamoDB that `make test` starts (it sets TABLE_NAME and DYNAMODB_ENDPOINT).

#![allow(dead_code)] // each test file uses its own part of the harness

pub mod faults;
pub mod interleave;
pub mod mail;
pub mod sessions;

use aws_sdk_dynamodb::config::retry::RetryPartition;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shared::AppState;
use shared::clock::Clock;
use shared::config::Config;
use shared::domain::{Actor, AuditContext, AuditEvent, UserAction};
use shared::http::Endpoint;
use shared::store::{AuditQuery, Store};
use time::Duration;
use uuid::Uuid;

use faults::FaultInjector;

pub const PASSWORD: &str = "Fog-Compute-2024";
const SECRET: &str = "in-process-test-secret-of-at-least-32-bytes";
pub const MFA_KEY: &str = "in-process-test-mfa-key-of-at-least-32-bytes";

pub struct TestApp {
    pub state: &'static AppState,
}

impl TestApp {
    /// Every event of `kind` about `subject` in the day around the app's clock, newest first.
    pub async fn events(&self, subject: Uuid, kind: &str) -> Vec<AuditEvent> {
        let now = self.state.clock.now();
        let page = self
            .state
            .store
            .audit_events(&AuditQuery {
                at: now,
                kind: None,
                subject: Some(subject.to_string()),
                since: now - Duration::days(1),
                until: now + Duration::days(1),
                before: None,
                limit: 100,
            })
            .await
            .unwrap();
        page.events
            .into_iter()
            .filter(|event| event.kind.as_str() == kind)
            .collect()
    }

    /// Rate limits high enough that only the rate-limit tests meet them.
    pub async fn new() -> Self {
        Self::with_settings(&[]).await
    }

    /// With settings that override the environment's (e.g. `RATE_LIMIT_READ_PER_MIN`, or a
    /// `DYNAMODB_ENDPOINT` that nothing listens on).
    pub async fn with_settings(settings: &[(&str, &str)]) -> Self {
        Self {
            state: Box::leak(Box::new(app_state(settings).await)),
        }
    }

    /// With a clock `offset` ahead of the system's, against the same table: the API as it will
    /// answer then.
    pub async fn later(offset: time::Duration) -> Self {
        Self::later_with_settings(offset, &[]).await
    }

    /// `later`, with settings (as `with_settings`).
    pub async fn later_with_settings(offset: time::Duration, settings: &[(&str, &str)]) -> Self {
        let mut state = app_state(settings).await;
        state.clock = Clock::offset(offset);
        Self {
            state: Box::leak(Box::new(state)),
        }
    }

    /// With every DynamoDB call going through `injector`, and a retry quota of its own (the
    /// SDK shares one per process otherwise), as a fresh Lambda instance would have.
    pub async fn with_fault_injector(injector: &FaultInjector) -> Self {
        Self::with_interceptor(injector.clone()).await
    }

    /// With every DynamoDB call going through `interceptor` (see `with_fault_injector`).
    pub async fn with_interceptor(
        interceptor: impl aws_sdk_dynamodb::config::Intercept + 'static,
    ) -> Self {
        let mut state = app_state(&[]).await;
        let sdk_config = shared::store::sdk_config(state.config.dynamodb_endpoint.as_deref()).await;
        let client_config = aws_sdk_dynamodb::config::Builder::from(&sdk_config)
            .interceptor(interceptor)
            .retry_partition(RetryPartition::new(format!(
                "fault-injection-{}",
                uuid::Uuid::new_v4()
            )))
            .build();
        state.store = Store::new(
            aws_sdk_dynamodb::Client::from_conf(client_config),
            &state.config.table_name,
        );
        Self {
            state: Box::leak(Box::new(state)),
        }
    }

    /// Runs `request` through `endpoint` as its function would: token, rate limiter, handler.
    pub async fn call(&self, endpoint: &Endpoint, request: Request) -> TestResponse {
        TestResponse(shared::http::dispatch(endpoint, request, self.state).await)
    }

    pub async fn register(&self, username: &str) -> TestResponse {
        let body = json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD});
        self.call(
            &shared::handlers::REGISTER,
            event("POST", "/api/auth/register").json(&body).build(),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> TestResponse {
        let body = json!({"username": username, "password": password});
        self.call(
            &shared::handlers::LOGIN,
            event("POST", "/api/auth/login").json(&body).build(),
        )
        .await
    }

    /// A new user's name and access token.
    pub async fn user_with_token(&self) -> (String, String) {
        let username = unique_username();
        assert_eq!(self.register(&username).await.status(), 201);
        let login = self.login(&username, PASSWORD).await;
        assert_eq!(login.status(), 200);
        (
            username,
            login.json()["access_token"].as_str().unwrap().to_owned(),
        )
    }

    /// A new administrator's name and access token.
    pub async fn admin_with_token(&self) -> (String, String) {
        let (username, token) = self.user_with_token().await;
        self.act_on(&username, UserAction::Promote).await;
        (username, token)
    }

    /// Does `action` to the user named `username` as fogctl does (recorded, actor `fogctl`).
    pub async fn act_on(&self, username: &str, action: UserAction) {
        let store = &self.state.store;
        let user = store
            .user_by_username(username)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no user {username}"));
        store
            .act_on_user(
                &user,
                action,
                &audit_context(Actor::Fogctl, self.state.clock.now()),
            )
            .await
            .unwrap();
    }

    /// `POST /api/keys` with `body`, as the token's user.
    pub async fn create_key(&self, token: &str, body: &Value) -> TestResponse {
        self.call(
            &shared::handlers::CREATE_API_KEY,
            event("POST", "/api/keys").bearer(token).json(body).build(),
        )
        .await
    }

    /// A new key of the token's user with `body`: its id and secret.
    pub async fn key(&self, token: &str, body: &Value) -> (String, String) {
        let created = self.create_key(token, body).await;
        assert_eq!(created.status(), 201, "{}", created.text());
        let created = created.json();
        (
            created["id"].as_str().unwrap().to_owned(),
            created["secret_key"].as_str().unwrap().to_owned(),
        )
    }

    /// The wallet address of the token's user.
    pub async fn wallet(&self, token: &str) -> String {
        let me = self
            .call(
                &shared::handlers::ME,
                event("GET", "/api/auth/me").bearer(token).build(),
            )
            .await;
        me.json()["wallet_address"].as_str().unwrap().to_owned()
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let endpoint = std::env::var("DYNAMODB_ENDPOINT").expect("set by `make test`");
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    pub fn table(&self) -> &str {
        self.state.store.table()
    }
}

async fn app_state(settings: &[(&str, &str)]) -> AppState {
    let config = Config::from_lookup(|name| {
        let setting = settings
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string());
        match name {
            "JWT_SECRET" => Some(SECRET.to_owned()),
            "MFA_KEY" => Some(MFA_KEY.to_owned()),
            _ if setting.is_some() => setting,
            _ if name.starts_with("RATE_LIMIT_") => Some("100000".to_owned()),
            _ => std::env::var(name).ok(),
        }
    })
    .expect("TABLE_NAME and DYNAMODB_ENDPOINT are set by `make test`");
    // A route that checks second factors, so that the state holds every key any endpoint needs.
    AppState::new(config, &shared::handlers::MFA_SETUP.route)
        .await
        .expect("the app starts")
}

/// Where a test's own writes come from, for the events they carry.
pub fn audit_context(actor: Actor, at: time::OffsetDateTime) -> AuditContext {
    AuditContext {
        actor,
        source_ip: None,
        request_id: None,
        at,
        retention_days: shared::config::DEFAULT_AUDIT_RETENTION_DAYS,
    }
}

pub fn unique_username() -> String {
    format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// An API Gateway HTTP API (payload 2.0) event, as API Gateway sends it.
#[derive(Clone)]
pub struct EventBuilder {
    event: Value,
}

pub fn event(method: &str, path: &str) -> EventBuilder {
    EventBuilder {
        event: json!({
            "version": "2.0",
            "routeKey": format!("{method} {path}"),
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"host": "api.example.com", "user-agent": "in-process-test"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "domainName": "api.example.com",
                "domainPrefix": "api",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.10",
                    "userAgent": "in-process-test"
                },
                "requestId": uuid::Uuid::new_v4().to_string(),
                "routeKey": format!("{method} {path}"),
                "stage": "$default",
                "time": "27/Nov/2026:12:00:00 +0000",
                "timeEpoch": 1_795_780_800_000_u64
            },
            "isBase64Encoded": false
        }),
    }
}

impl EventBuilder {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.event["headers"][name] = json!(value);
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn api_key(self, secret: &str) -> Self {
        self.header("x-api-key", secret)
    }

    pub fn source_ip(mut self, ip: &str) -> Self {
        self.event["requestContext"]["http"]["sourceIp"] = json!(ip);
        self
    }

    /// The raw query string, e.g. `limit=2&cursor=abc` (already URL-encoded).
    pub fn query(mut self, raw: &str) -> Self {
        self.event["rawQueryString"] = json!(raw);
        self
    }

    pub fn path_parameter(mut self, name: &str, value: &str) -> Self {
        self.event["pathParameters"][name] = json!(value);
        self
    }

    pub fn json(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(&body.to_string())
    }

    pub fn body(mut self, body: &str) -> Self {
        self.event["body"] = json!(body);
        self
    }

    /// A body API Gateway base64-encoded, as it does with binary payloads.
    pub fn base64_body(mut self, bytes: &[u8]) -> Self {
        use base64::Engine;
        self.event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        self.event["isBase64Encoded"] = json!(true);
        self
    }

    pub fn build(self) -> Request {
        lambda_http::request::from_str(&self.event.to_string())
            .expect("a valid API Gateway v2 event")
    }
}

pub struct TestResponse(pub Response<Body>);

impl TestResponse {
    pub fn status(&self) -> u16 {
        self.0.status().as_u16()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.0
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    }

    /// The names of the response's headers, in the order they were set.
    pub fn header_names(&self) -> Vec<String> {
        self.0
            .headers()
            .keys()
            .map(|name| name.to_string())
            .collect()
    }

    pub fn text(&self) -> &str {
        match self.0.body() {
            Body::Text(text) => text,
            Body::Empty => "",
            _ => panic!("binary response body"),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(self.text()).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }
}
