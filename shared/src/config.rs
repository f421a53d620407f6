use secrecy::{ExposeSecret, SecretString};

use crate::domain::{BaseUrl, Email};

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
/// How long a password-reset link works, in minutes.
pub const PASSWORD_RESET_TOKEN_MINUTES: std::ops::RangeInclusive<i64> = 5..=24 * 60;
const DEFAULT_PASSWORD_RESET_TOKEN_MINUTES: i64 = 60;
/// How long an address-verification link works, in hours.
pub const EMAIL_VERIFICATION_TOKEN_HOURS: std::ops::RangeInclusive<i64> = 1..=14 * 24;
const DEFAULT_EMAIL_VERIFICATION_TOKEN_HOURS: i64 = 48;

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
    checked_key("JWT_SECRET", secret)
}

/// Where the MFA key comes from (the key the TOTP secrets' encryption key and the backup codes'
/// hash key are derived from): as the JWT secret's, a value or a Secrets Manager secret. Never
/// defaulted: a function that needs it refuses to start without it.
#[derive(Debug)]
pub enum MfaKeySource {
    Value(SecretString),
    SecretsManager { arn: String },
}

/// The MFA key itself, refused when shorter than `MIN_JWT_SECRET_BYTES`.
pub fn checked_mfa_key(key: SecretString) -> Result<SecretString, ConfigError> {
    checked_key("MFA_KEY", key)
}

fn checked_key(name: &'static str, key: SecretString) -> Result<SecretString, ConfigError> {
    if key.expose_secret().len() < MIN_JWT_SECRET_BYTES {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
        });
    }
    Ok(key)
}

/// Settings read once per cold start.
#[derive(Debug)]
pub struct Config {
    pub table_name: String,
    /// Set only for a local DynamoDB-compatible server; empty means the AWS endpoint.
    pub dynamodb_endpoint: Option<String>,
    /// Required by every function but those that read no token (see `AppState::new`).
    pub jwt_secret: Option<JwtSecretSource>,
    /// Required by the functions that check second factors (see `AppState::new`).
    pub mfa_key: Option<MfaKeySource>,
    /// `ADMIN_MFA_REQUIRED` (`true` or `false`; `false` when unset, the template's default is
    /// `true`): whether the admin API answers 403 to a session without the second factor.
    pub admin_mfa_required: bool,
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
    /// `MAIL_FROM`: the sender of every mail (an SES identity). Required by the functions that
    /// send mail (see `AppState::new`).
    pub mail_from: Option<Email>,
    /// `APP_BASE_URL`: the frontend's address, where mailed links point.
    pub app_base_url: Option<BaseUrl>,
    /// `PASSWORD_RESET_TOKEN_MINUTES`: see `PASSWORD_RESET_TOKEN_MINUTES`.
    pub password_reset_token_minutes: i64,
    /// `EMAIL_VERIFICATION_TOKEN_HOURS`: see `EMAIL_VERIFICATION_TOKEN_HOURS`.
    pub email_verification_token_hours: i64,
    /// `REQUIRE_VERIFIED_EMAIL`: the platform's write routes refuse unverified users (403).
    pub require_verified_email: bool,
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
        let mfa_key = match (non_empty("MFA_KEY"), non_empty("MFA_KEY_ARN")) {
            (Some(value), _) => Some(MfaKeySource::Value(checked_mfa_key(SecretString::from(
                value,
            ))?)),
            (None, Some(arn)) => Some(MfaKeySource::SecretsManager { arn }),
            (None, None) => None,
        };
        let admin_mfa_required = match non_empty("ADMIN_MFA_REQUIRED").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "ADMIN_MFA_REQUIRED",
                    reason: "must be true or false".into(),
                });
            }
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
        let password_reset_token_minutes = whole_number(
            "PASSWORD_RESET_TOKEN_MINUTES",
            PASSWORD_RESET_TOKEN_MINUTES,
            DEFAULT_PASSWORD_RESET_TOKEN_MINUTES,
            "minutes",
        )?;
        let email_verification_token_hours = whole_number(
            "EMAIL_VERIFICATION_TOKEN_HOURS",
            EMAIL_VERIFICATION_TOKEN_HOURS,
            DEFAULT_EMAIL_VERIFICATION_TOKEN_HOURS,
            "hours",
        )?;
        let require_verified_email = match non_empty("REQUIRE_VERIFIED_EMAIL").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "REQUIRE_VERIFIED_EMAIL",
                    reason: "must be true or false".into(),
                });
            }
        };
        let invalid =
            |name: &'static str| move |reason: String| ConfigError::Invalid { name, reason };
        let mail_from = non_empty("MAIL_FROM")
            .map(|raw| Email::parse(&raw).map_err(invalid("MAIL_FROM")))
            .transpose()?;
        let app_base_url = non_empty("APP_BASE_URL")
            .map(|raw| BaseUrl::parse(&raw).map_err(invalid("APP_BASE_URL")))
            .transpose()?;
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
            mfa_key,
            admin_mfa_required,
            access_token_minutes,
            refresh_token_days,
            refresh_reuse_grace_seconds,
            audit_retention_days,
            reauthentication_minutes,
            mail_from,
            app_base_url,
            password_reset_token_minutes,
            email_verification_token_hours,
            require_verified_email,
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

    #[test]
    fn reads_the_mail_settings_and_refuses_nonsense() {
        let defaults = config(&[("TABLE_NAME", "t"), ("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(defaults.password_reset_token_minutes, 60);
        assert_eq!(defaults.email_verification_token_hours, 48);
        assert!(!defaults.require_verified_email);
        assert!(defaults.mail_from.is_none() && defaults.app_base_url.is_none());
        let set = config(&[
            ("TABLE_NAME", "t"),
            ("JWT_SECRET", SECRET),
            ("MAIL_FROM", "No-Reply@Example.com"),
            ("APP_BASE_URL", "https://app.example.com/"),
            ("PASSWORD_RESET_TOKEN_MINUTES", "15"),
            ("EMAIL_VERIFICATION_TOKEN_HOURS", "24"),
            ("REQUIRE_VERIFIED_EMAIL", "true"),
        ])
        .unwrap();
        assert_eq!(set.mail_from.unwrap().as_str(), "no-reply@example.com");
        assert_eq!(set.password_reset_token_minutes, 15);
        assert_eq!(set.email_verification_token_hours, 24);
        assert!(set.require_verified_email);
        for (name, bad) in [
            ("MAIL_FROM", "not an address"),
            ("APP_BASE_URL", "app.example.com"),
            ("PASSWORD_RESET_TOKEN_MINUTES", "4"),
            ("PASSWORD_RESET_TOKEN_MINUTES", "1441"),
            ("EMAIL_VERIFICATION_TOKEN_HOURS", "0"),
            ("EMAIL_VERIFICATION_TOKEN_HOURS", "337"),
            ("REQUIRE_VERIFIED_EMAIL", "yes"),
            ("REQUIRE_VERIFIED_EMAIL", "TRUE"),
        ] {
            let error = config(&[("TABLE_NAME", "t"), ("JWT_SECRET", SECRET), (name, bad)])
                .err()
                .unwrap_or_else(|| panic!("{name}={bad} was accepted"));
            assert!(error.to_string().contains(name), "{error}");
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
        let config = config_with_mfa(&[("MFA_KEY", MFA_KEY)]).unwrap();
        assert!(!format!("{config:?}").contains(MFA_KEY));
    }

    const MFA_KEY: &str = "an-mfa-key-that-is-at-least-32-bytes-long";

    fn config_with_mfa(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut all = vec![("TABLE_NAME", "t"), ("JWT_SECRET", SECRET)];
        all.extend_from_slice(vars);
        config(&all)
    }

    #[test]
    fn reads_the_mfa_settings_and_refuses_nonsense() {
        let unset = config_with_mfa(&[]).unwrap();
        assert!(unset.mfa_key.is_none() && !unset.admin_mfa_required);
        let set = config_with_mfa(&[("MFA_KEY", MFA_KEY), ("ADMIN_MFA_REQUIRED", "true")]).unwrap();
        assert!(matches!(set.mfa_key, Some(MfaKeySource::Value(_))) && set.admin_mfa_required);
        let arn = config_with_mfa(&[("MFA_KEY_ARN", "arn:aws:secretsmanager:m")]).unwrap();
        assert!(matches!(
            arn.mfa_key,
            Some(MfaKeySource::SecretsManager { .. })
        ));
        for (name, bad) in [
            ("MFA_KEY", &MFA_KEY[..31]),
            ("ADMIN_MFA_REQUIRED", "yes"),
            ("ADMIN_MFA_REQUIRED", "TRUE"),
        ] {
            let error = config_with_mfa(&[(name, bad)]).expect_err("refused");
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}
