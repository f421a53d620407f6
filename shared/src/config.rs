use secrecy::{ExposeSecret, SecretString};

/// JWT HMAC keys shorter than this are refused at start-up.
pub const MIN_JWT_SECRET_BYTES: usize = 32;
const DEFAULT_TOKEN_MINUTES: i64 = 30;
/// An access token's lifetime, in minutes.
pub const ACCESS_TOKEN_MINUTES: std::ops::RangeInclusive<i64> = 1..=24 * 60;
/// A refresh token's lifetime, in days: at least the longest access token's (1440 minutes), so
/// that a session outlives every access token issued in it.
pub const REFRESH_TOKEN_DAYS: std::ops::RangeInclusive<i64> = 1..=90;
const DEFAULT_REFRESH_TOKEN_DAYS: i64 = 7;
/// How long after its rotation a refresh token may be presented again and answered with the same
/// new pair (two tabs refreshing at once), rather than taken for a stolen copy.
pub const REFRESH_REUSE_GRACE_SECONDS: std::ops::RangeInclusive<i64> = 0..=60;
const DEFAULT_REFRESH_REUSE_GRACE_SECONDS: i64 = 10;
/// How long audit events are kept before the table's TTL expires them, in days.
pub const AUDIT_RETENTION_DAYS: std::ops::RangeInclusive<i64> = 1..=3650;
pub const DEFAULT_AUDIT_RETENTION_DAYS: i64 = 90;
/// How recent a sign-in (a login, or a reauthentication) must be for the actions that need one
/// (creating an API key), in minutes.
pub const REAUTHENTICATION_MINUTES: std::ops::RangeInclusive<i64> = 1..=24 * 60;
const DEFAULT_REAUTHENTICATION_MINUTES: i64 = 10;

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
    /// `REFRESH_TOKEN_EXPIRE_DAYS`: how long a refresh token (and an idle session) lives.
    pub refresh_token_days: i64,
    /// `REFRESH_REUSE_GRACE_SECONDS`: see `REFRESH_REUSE_GRACE_SECONDS`.
    pub refresh_reuse_grace_seconds: i64,
    pub rate_limits: RateLimits,
    /// `AUDIT_RETENTION_DAYS`: how long audit events are kept.
    pub audit_retention_days: i64,
    /// `REAUTHENTICATION_MINUTES`: see `REAUTHENTICATION_MINUTES`.
    pub reauthentication_minutes: i64,
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
        let whole_number =
            |name: &'static str, range: std::ops::RangeInclusive<i64>, default: i64, unit: &str| {
                match non_empty(name) {
                    None => Ok(default),
                    Some(raw) => raw
                        .parse::<i64>()
                        .ok()
                        .filter(|value| range.contains(value))
                        .ok_or_else(|| ConfigError::Invalid {
                            name,
                            reason: format!(
                                "must be a whole number of {unit} from {} to {}",
                                range.start(),
                                range.end()
                            ),
                        }),
                }
            };
        let access_token_minutes = whole_number(
            "ACCESS_TOKEN_EXPIRE_MINUTES",
            ACCESS_TOKEN_MINUTES,
            DEFAULT_TOKEN_MINUTES,
            "minutes",
        )?;
        let refresh_token_days = whole_number(
            "REFRESH_TOKEN_EXPIRE_DAYS",
            REFRESH_TOKEN_DAYS,
            DEFAULT_REFRESH_TOKEN_DAYS,
            "days",
        )?;
        let refresh_reuse_grace_seconds = whole_number(
            "REFRESH_REUSE_GRACE_SECONDS",
            REFRESH_REUSE_GRACE_SECONDS,
            DEFAULT_REFRESH_REUSE_GRACE_SECONDS,
            "seconds",
        )?;
        let audit_retention_days = whole_number(
            "AUDIT_RETENTION_DAYS",
            AUDIT_RETENTION_DAYS,
            DEFAULT_AUDIT_RETENTION_DAYS,
            "days",
        )?;
        let reauthentication_minutes = whole_number(
            "REAUTHENTICATION_MINUTES",
            REAUTHENTICATION_MINUTES,
            DEFAULT_REAUTHENTICATION_MINUTES,
            "minutes",
        )?;
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
            refresh_token_days,
            refresh_reuse_grace_seconds,
            audit_retention_days,
            reauthentication_minutes,
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
    fn reads_the_refresh_settings_and_refuses_nonsense() {
        let defaults = config(&[("TABLE_NAME", "t"), ("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(
            (
                defaults.refresh_token_days,
                defaults.refresh_reuse_grace_seconds
            ),
            (7, 10)
        );
        let set = config(&[
            ("TABLE_NAME", "t"),
            ("JWT_SECRET", SECRET),
            ("REFRESH_TOKEN_EXPIRE_DAYS", "90"),
            ("REFRESH_REUSE_GRACE_SECONDS", "0"),
        ])
        .unwrap();
        assert_eq!(
            (set.refresh_token_days, set.refresh_reuse_grace_seconds),
            (90, 0)
        );
        assert_eq!(defaults.audit_retention_days, 90);
        let kept = config(&[
            ("TABLE_NAME", "t"),
            ("JWT_SECRET", SECRET),
            ("AUDIT_RETENTION_DAYS", "365"),
        ])
        .unwrap();
        assert_eq!(kept.audit_retention_days, 365);
        for (name, bad) in [
            ("AUDIT_RETENTION_DAYS", "0"),
            ("AUDIT_RETENTION_DAYS", "3651"),
            ("REFRESH_TOKEN_EXPIRE_DAYS", "0"),
            ("REFRESH_TOKEN_EXPIRE_DAYS", "91"),
            ("REFRESH_TOKEN_EXPIRE_DAYS", "7.5"),
            ("REFRESH_TOKEN_EXPIRE_DAYS", "week"),
            ("REFRESH_REUSE_GRACE_SECONDS", "-1"),
            ("REFRESH_REUSE_GRACE_SECONDS", "61"),
            ("REFRESH_REUSE_GRACE_SECONDS", "1e1"),
        ] {
            let error = config(&[("TABLE_NAME", "t"), ("JWT_SECRET", SECRET), (name, bad)])
                .err()
                .unwrap_or_else(|| panic!("{name}={bad} was accepted"));
            let message = error.to_string();
            assert!(message.contains(name), "{message}");
            assert!(message.contains("whole number"), "{message}");
        }
    }

    #[test]
    fn reads_the_reauthentication_window_and_refuses_nonsense() {
        let defaults = config(&[("TABLE_NAME", "t"), ("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(defaults.reauthentication_minutes, 10);
        let set = config(&[
            ("TABLE_NAME", "t"),
            ("JWT_SECRET", SECRET),
            ("REAUTHENTICATION_MINUTES", "1440"),
        ])
        .unwrap();
        assert_eq!(set.reauthentication_minutes, 1440);
        for bad in ["0", "-1", "1441", "2.5", "ten"] {
            let error = config(&[
                ("TABLE_NAME", "t"),
                ("JWT_SECRET", SECRET),
                ("REAUTHENTICATION_MINUTES", bad),
            ])
            .err()
            .unwrap_or_else(|| panic!("REAUTHENTICATION_MINUTES={bad} was accepted"));
            assert_eq!(
                error.to_string(),
                "environment variable REAUTHENTICATION_MINUTES is invalid: must be a whole number of minutes from 1 to 1440"
            );
        }
    }

    /// A session lives at least as long as any access token issued in it, so an access token
    /// never outlives the session that checks it.
    #[test]
    fn a_refresh_token_outlives_the_longest_access_token() {
        assert!(REFRESH_TOKEN_DAYS.start() * 24 * 60 >= *ACCESS_TOKEN_MINUTES.end());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let config = config(&[("TABLE_NAME", "t"), ("JWT_SECRET", SECRET)]).unwrap();
        assert!(!format!("{config:?}").contains(SECRET));
    }
}
