//! Cold-start set-up: reading the JWT secret from Secrets Manager (moto's, at the local
//! endpoint), and refusing to start without a usable one.

use secrecy::SecretString;
use shared::AppState;
use shared::app::StartupError;
use shared::config::{Config, ConfigError};
use shared::domain::{Email, User, Username};
use shared::handlers::{HEALTH, ROOT, UNMATCHED};

fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").expect("set by `make test`")
}

async fn secret_arn(value: &str) -> String {
    let sdk_config = shared::store::sdk_config(Some(&endpoint())).await;
    aws_sdk_secretsmanager::Client::new(&sdk_config)
        .create_secret()
        .name(format!("jwt-{}", uuid::Uuid::new_v4()))
        .secret_string(value)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

fn config_with_arn(arn: &str) -> Config {
    Config::from_lookup(|name| match name {
        "JWT_SECRET_ARN" => Some(arn.to_owned()),
        "JWT_SECRET" => None,
        _ => std::env::var(name).ok(),
    })
    .unwrap()
}

#[tokio::test]
async fn reads_the_jwt_secret_from_secrets_manager_once_at_start() {
    let secret = "k".repeat(64);
    let state = AppState::new(config_with_arn(&secret_arn(&secret).await), &ROOT.route)
        .await
        .unwrap();
    let user = User::new(
        &Username::parse("alice").unwrap(),
        &Email::parse("alice@example.com").unwrap(),
        time::OffsetDateTime::now_utc(),
    );
    let token = state
        .jwt_keys()
        .unwrap()
        .issue(
            &user,
            uuid::Uuid::now_v7(),
            time::OffsetDateTime::now_utc(),
            shared::domain::Assurance::Password,
        )
        .token;
    let with_the_same_key = shared::auth::JwtKeys::new(&SecretString::from(secret), 30);
    assert_eq!(with_the_same_key.verify(&token).unwrap().sub, user.id);
}

#[tokio::test]
async fn refuses_to_start_with_a_short_secret_from_secrets_manager() {
    let result = AppState::new(config_with_arn(&secret_arn("too-short").await), &ROOT.route).await;
    assert!(matches!(
        result,
        Err(StartupError::Config(ConfigError::Invalid {
            name: "JWT_SECRET",
            ..
        }))
    ));
}

#[tokio::test]
async fn refuses_to_start_when_the_secret_cannot_be_read() {
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf";
    let result = AppState::new(config_with_arn(missing), &ROOT.route).await;
    let Err(StartupError::SecretUnavailable(reason)) = result else {
        panic!("started without a secret")
    };
    assert!(!reason.is_empty());
}

fn config_without_a_secret() -> Config {
    Config::from_lookup(|name| match name {
        "JWT_SECRET" | "JWT_SECRET_ARN" => None,
        _ => std::env::var(name).ok(),
    })
    .unwrap()
}

#[tokio::test]
async fn refuses_to_start_without_a_secret() {
    let result = AppState::new(config_without_a_secret(), &ROOT.route).await;
    assert!(matches!(
        result,
        Err(StartupError::Config(ConfigError::Missing(
            "JWT_SECRET or JWT_SECRET_ARN"
        )))
    ));
}

/// The health check reads no token, so its function needs no secret (nor the right to read one).
#[tokio::test]
async fn the_health_check_starts_without_a_secret() {
    let state = AppState::new(config_without_a_secret(), &HEALTH.route)
        .await
        .unwrap();
    let response = shared::http::dispatch(
        &HEALTH,
        lambda_http::request::from_str(include_str!("../../../events/health.json")).unwrap(),
        Box::leak(Box::new(state)),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-ratelimit-limit").is_none());
}

/// The answer to unmatched requests reads no token either: it starts without the secret, and
/// its fixture (a browser's GET of the login route) is 405.
#[tokio::test]
async fn the_unmatched_route_starts_without_a_secret() {
    let state = AppState::new(config_without_a_secret(), &UNMATCHED.route)
        .await
        .unwrap();
    assert!(state.jwt_keys().is_none());
    let response = shared::http::dispatch(
        &UNMATCHED,
        lambda_http::request::from_str(include_str!("../../../events/not-found.json")).unwrap(),
        Box::leak(Box::new(state)),
    )
    .await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}
