use crate::auth::Tokens;
use crate::config::{Config, ConfigError};
use crate::store::Store;

/// What every request of a process shares, built once per cold start.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub tokens: Tokens,
}

impl AppState {
    pub async fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(Config::from_env()?).await)
    }

    pub async fn new(config: Config) -> Self {
        Self {
            store: Store::connect(&config.table_name, config.dynamodb_endpoint.as_deref()).await,
            tokens: Tokens::new(&config.jwt_secret, config.access_token_minutes),
            config,
        }
    }
}
