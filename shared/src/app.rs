use aws_config::SdkConfig;
use secrecy::SecretString;

use crate::auth::JwtKeys;
use crate::clock::Clock;
use crate::config::{Config, ConfigError, JwtSecretSource, checked_jwt_secret};
use crate::routes::Route;
use crate::store::{self, Store, sdk_config};

/// What every request of a process shares, built once per cold start.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    /// Absent only in a function whose route reads no token (an exempt one: the health check,
    /// the docs page; and the default route's), which therefore starts without a JWT secret.
    jwt_keys: Option<JwtKeys>,
    pub clock: Clock,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not read the JWT secret from Secrets Manager: {0}")]
    SecretUnavailable(String),
}

impl AppState {
    pub async fn from_env(route: &Route) -> Result<Self, StartupError> {
        Self::new(Config::from_env()?, route).await
    }

    /// The state of the function serving `route`: every function whose route reads tokens needs
    /// the JWT secret and refuses to start without it.
    pub async fn new(config: Config, route: &Route) -> Result<Self, StartupError> {
        let sdk_config = sdk_config(config.dynamodb_endpoint.as_deref()).await;
        let jwt_secret = match (&config.jwt_secret, route.reads_tokens()) {
            (_, false) => None,
            (None, true) => {
                return Err(ConfigError::Missing("JWT_SECRET or JWT_SECRET_ARN").into());
            }
            (Some(JwtSecretSource::Value(secret)), true) => Some(secret.clone()),
            (Some(JwtSecretSource::SecretsManager { arn }), true) => {
                Some(read_secret(&sdk_config, arn).await?)
            }
        };
        Ok(Self {
            store: Store::new(store::client(&sdk_config), &config.table_name),
            jwt_keys: jwt_secret.map(|secret| JwtKeys::new(&secret, config.access_token_minutes)),
            clock: Clock::default(),
            config,
        })
    }

    /// The access-token signer and verifier; `None` only in a function whose route reads no token.
    pub fn jwt_keys(&self) -> Option<&JwtKeys> {
        self.jwt_keys.as_ref()
    }
}

async fn read_secret(sdk_config: &SdkConfig, arn: &str) -> Result<SecretString, StartupError> {
    let output = aws_sdk_secretsmanager::Client::new(sdk_config)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|error| StartupError::SecretUnavailable(format!("{error:?}")))?;
    let value = output
        .secret_string
        .ok_or_else(|| StartupError::SecretUnavailable("the secret has no string value".into()))?;
    Ok(checked_jwt_secret(SecretString::from(value))?)
}
