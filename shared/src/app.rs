use aws_config::SdkConfig;
use secrecy::SecretString;

use crate::auth::{JwtKeys, MfaKeys};
use crate::clock::Clock;
use crate::config::{
    Config, ConfigError, JwtSecretSource, MfaKeySource, checked_jwt_secret, checked_mfa_key,
};
use crate::mail::{Outbox, Ses};
use crate::routes::Route;
use crate::store::{self, Store, sdk_config};

/// What every request of a process shares, built once per cold start.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    /// Absent only in a function whose route reads no token (an exempt one: the health check,
    /// the docs page; and the default route's), which therefore starts without a JWT secret.
    jwt_keys: Option<JwtKeys>,
    /// Present only in the functions that check second factors (`Route::checks_second_factor`).
    mfa_keys: Option<MfaKeys>,
    pub clock: Clock,
    /// Where mail goes out: absent in a function whose route sends none and that was not given
    /// `MAIL_FROM` and `APP_BASE_URL`.
    outbox: Option<Outbox>,
}

/// The functions that send mail, which refuse to start without `MAIL_FROM` and `APP_BASE_URL`.
pub const MAIL_SENDERS: &[&str] = &["register", "password-reset-request", "verify-email-resend"];

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not read a secret from Secrets Manager: {0}")]
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
                Some(checked_jwt_secret(read_secret(&sdk_config, arn).await?)?)
            }
        };
        let mfa_key = match (&config.mfa_key, route.checks_second_factor()) {
            (_, false) => None,
            (None, true) => return Err(ConfigError::Missing("MFA_KEY or MFA_KEY_ARN").into()),
            (Some(MfaKeySource::Value(key)), true) => Some(key.clone()),
            (Some(MfaKeySource::SecretsManager { arn }), true) => {
                Some(checked_mfa_key(read_secret(&sdk_config, arn).await?)?)
            }
        };
        let outbox = match (&config.mail_from, &config.app_base_url) {
            (Some(from), Some(base_url)) => Some(Outbox::new(
                from.clone(),
                base_url.clone(),
                Box::new(Ses::new(&sdk_config)),
            )),
            (None, _) if MAIL_SENDERS.contains(&route.function) => {
                return Err(ConfigError::Missing("MAIL_FROM").into());
            }
            (_, None) if MAIL_SENDERS.contains(&route.function) => {
                return Err(ConfigError::Missing("APP_BASE_URL").into());
            }
            _ => None,
        };
        Ok(Self {
            outbox,
            store: Store::new(store::client(&sdk_config), &config.table_name),
            jwt_keys: jwt_secret.map(|secret| JwtKeys::new(&secret, config.access_token_minutes)),
            mfa_keys: mfa_key.map(|key| MfaKeys::new(&key)),
            clock: Clock::default(),
            config,
        })
    }

    /// Where mail goes out; `None` only in a function that sends none (`MAIL_SENDERS`).
    pub fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_ref()
    }

    /// The access-token signer and verifier; `None` only in a function whose route reads no token.
    pub fn jwt_keys(&self) -> Option<&JwtKeys> {
        self.jwt_keys.as_ref()
    }

    /// The second factor's keys; `None` in a function that checks no second factor.
    pub fn mfa_keys(&self) -> Option<&MfaKeys> {
        self.mfa_keys.as_ref()
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
    Ok(SecretString::from(value))
}
