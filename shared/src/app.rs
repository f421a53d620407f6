use aws_config::SdkConfig;
use secrecy::SecretString;

use crate::auth::Tokens;
use crate::clock::Clock;
use crate::config::{Config, ConfigError, JwtSecretSource, checked_jwt_secret};
use crate::store::{self, Store, sdk_config};

/// What every request of a process shares, built once per cold start.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub tokens: Tokens,
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
    pub async fn from_env() -> Result<Self, StartupError> {
        Self::new(Config::from_env()?).await
    }

    pub async fn new(config: Config) -> Result<Self, StartupError> {
        let sdk_config = sdk_config(config.dynamodb_endpoint.as_deref()).await;
        let jwt_secret = match &config.jwt_secret {
            JwtSecretSource::Value(secret) => secret.clone(),
            JwtSecretSource::SecretsManager { arn } => read_secret(&sdk_config, arn).await?,
        };
        Ok(Self {
            store: Store::new(store::client(&sdk_config), &config.table_name),
            tokens: Tokens::new(&jwt_secret, config.access_token_minutes),
            clock: Clock::default(),
            config,
        })
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
