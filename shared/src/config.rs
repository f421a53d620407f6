use secrecy::{ExposeSecret, SecretString};

/// JWT HMAC keys shorter than this are refused at start-up.
pub const MIN_JWT_SECRET_BYTES: usize = 32;
const DEFAULT_TOKEN_MINUTES: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where the HS256 key comes from: the value itself (local runs), or a Secrets Manager secret
/// read once per cold start (deployments).
#[derive(Debug)]
pub enum JwtSecretSource {
    Value(SecretString),
    SecretsManager { arn: String },
}

/// The key itself, refused when too short to be an HS256 key.
pub fn checked_jwt_secret(secret: SecretString) -> Result<SecretString, ConfigError> {
    if secret.expose_secret().len() < MIN_JWT_SECRET_BYTES {
        return Err(ConfigError::Invalid {
            name: "JWT_SECRET",
            reason: format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
        });
    }
    Ok(secret)
}

/// Settings read once per cold start.
#[derive(Debug)]
pub struct Config {
    pub table_name: String,
    /// Set only for a local DynamoDB-compatible server; empty means the AWS endpoint.
    pub dynamodb_endpoint: Option<String>,
    /// Required by every function but those that read no token (see `AppState::new`).
    pub jwt_secret: Option<JwtSecretSource>,
    pub access_token_minutes: i64,
    pub rate_limits: RateLimits,
    /// Browser origins whose requests get CORS headers; empty allows none.
    pub cors_allowed_origins: Vec<String>,
}

/// Requests per identity per 60-second sliding window, by category.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub auth: u64,
    pub write: u64,
    pub read: u64,
    pub admin: u64,
}

impl RateLimits {
    const DEFAULT: Self = Self {
        auth: 10,
        write: 30,
        read: 100,
        admin: 200,
    };
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |name: &str| lookup(name).filter(|value| !value.is_empty());
        let table_name = non_empty("TABLE_NAME").ok_or(ConfigError::Missing("TABLE_NAME"))?;
        let jwt_secret = match (non_empty("JWT_SECRET"), non_empty("JWT_SECRET_ARN")) {
            (Some(value), _) => Some(JwtSecretSource::Value(checked_jwt_secret(
                SecretString::from(value),
            )?)),
            (None, Some(arn)) => Some(JwtSecretSource::SecretsManager { arn }),
            (None, None) => None,
        };
        let access_token_minutes = match non_empty("ACCESS_TOKEN_EXPIRE_MINUTES") {
            None => DEFAULT_TOKEN_MINUTES,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|minutes| (1..=24 * 60).contains(minutes))
                .ok_or_else(|| ConfigError::Invalid {
                    name: "ACCESS_TOKEN_EXPIRE_MINUTES",
                    reason: "must be a whole number of minutes from 1 to 1440".into(),
                })?,
        };
        let limit = |name: &'static str, default: u64| match non_empty(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|limit| (1..=1_000_000).contains(limit))
                .ok_or_else(|| ConfigError::Invalid {
                    name,
                    reason: "must be a whole number from 1 to 1000000".into(),
                }),
        };
        let defaults = RateLimits::DEFAULT;
        let rate_limits = RateLimits {
            auth: limit("RATE_LIMIT_AUTH_PER_MIN", defaults.auth)?,
            write: limit("RATE_LIMIT_WRITE_PER_MIN", defaults.write)?,
            read: limit("RATE_LIMIT_READ_PER_MIN", defaults.read)?,
            admin: limit("RATE_LIMIT_ADMIN_PER_MIN", defaults.admin)?,
        };
        let cors_allowed_origins = non_empty("CORS_ALLOWED_ORIGINS")
            .map(|origins| {
                origins
                    .split(',')
                    .map(str::trim)
                    .filter(|origin| !origin.is_empty())
                    .map(|origin| {
                        if origin == "*" {
                            Err(ConfigError::Invalid {
                                name: "CORS_ALLOWED_ORIGINS",
                                reason: "name the origins; a wildcard is not allowed".into(),
                            })
                        } else {
                            Ok(origin.to_owned())
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            cors_allowed_origins,
            rate_limits,
            table_name,
            dynamodb_endpoint: non_empty("DYNAMODB_ENDPOINT"),
            jwt_secret,
            access_token_minutes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn reads_required_and_defaulted_settings() {
        let config = config(&[("TABLE_NAME", "t"), ("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(config.table_name, "t");
        assert_eq!(config.access_token_minutes, 30);
        assert!(config.dynamodb_endpoint.is_none());
        assert_eq!(
            config.rate_limits,
            RateLimits {
                auth: 10,
                write: 30,
                read: 100,
                admin: 200
            }
        );
    }

    #[test]
    fn reads_rate_limits_and_refuses_nonsense() {
        let limited = config(&[
            ("TABLE_NAME", "t"),
            ("JWT_SECRET", SECRET),
            ("RATE_LIMIT_AUTH_PER_MIN", "3"),
        ])
        .unwrap();
        assert_eq!(limited.rate_limits.auth, 3);
        for bad in ["0", "-1", "ten", "1000001"] {
            let result = config(&[
                ("TABLE_NAME", "t"),
                ("JWT_SECRET", SECRET),
                ("RATE_LIMIT_READ_PER_MIN", bad),
            ]);
            assert!(result.is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn refuses_a_short_secret_and_leaves_a_missing_one_to_the_function() {
        let short = &SECRET[..31];
        assert!(matches!(
            config(&[("TABLE_NAME", "t"), ("JWT_SECRET", short)]),
            Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                ..
            })
        ));
        assert!(config(&[("TABLE_NAME", "t")]).unwrap().jwt_secret.is_none());
    }

    #[test]
    fn reads_a_secret_arn_when_no_value_is_given() {
        let config = config(&[
            ("TABLE_NAME", "t"),
            ("JWT_SECRET_ARN", "arn:aws:secretsmanager:x"),
        ])
        .unwrap();
        assert!(
            matches!(config.jwt_secret, Some(JwtSecretSource::SecretsManager { arn }) if arn == "arn:aws:secretsmanager:x")
        );
    }

    #[test]
    fn reads_cors_origins_and_refuses_a_wildcard() {
        let allowed = config(&[
            ("TABLE_NAME", "t"),
            ("JWT_SECRET", SECRET),
            (
                "CORS_ALLOWED_ORIGINS",
                "https://a.example, http://localhost:5173",
            ),
        ])
        .unwrap();
        assert_eq!(
            allowed.cors_allowed_origins,
            ["https://a.example", "http://localhost:5173"]
        );
        let wildcard = config(&[
            ("TABLE_NAME", "t"),
            ("JWT_SECRET", SECRET),
            ("CORS_ALLOWED_ORIGINS", "*"),
        ]);
        assert!(wildcard.is_err());
    }

    #[test]
    fn refuses_a_nonsense_token_lifetime() {
        for bad in ["0", "-5", "abc", "1441"] {
            let result = config(&[
                ("TABLE_NAME", "t"),
                ("JWT_SECRET", SECRET),
                ("ACCESS_TOKEN_EXPIRE_MINUTES", bad),
            ]);
            assert!(result.is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let config = config(&[("TABLE_NAME", "t"), ("JWT_SECRET", SECRET)]).unwrap();
        assert!(!format!("{config:?}").contains(SECRET));
    }
}
