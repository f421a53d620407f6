//! Domain types. Each validates on construction, so a value of the type is always valid.

mod admin;
mod amount;
mod api_key;
mod audit;
mod credentials;
mod device;
mod fields;
mod idempotency;
mod job;
mod lock;
mod mfa;
mod proposal;
mod recovery;
mod refresh_token;
mod text;
mod timestamp;
mod user;

pub use admin::{UserAction, UserFlag, username_prefix};
pub use amount::{Amount, MAX_TOKENS, TokenAmount};
pub use api_key::{
    ApiKey, DEFAULT_KEY_RATE_LIMIT, KEY_EXPIRES_IN_DAYS, KEY_NAME_CHARS, KEY_RATE_LIMIT,
    MAX_ACTIVE_KEYS, NewApiKey, key_name, key_scopes, whole_seconds,
};
pub use audit::{Actor, AuditContext, AuditEvent, AuditEventType, LoginFailure, MfaFailure};
pub use credentials::{
    Email, Password, USERNAME_CHARS, Username, is_username_char, normalized_password,
};
pub use device::{
    BATTERY_PERCENT, CPU_CORES, DEFAULT_BATTERY_PERCENT, Device, DeviceId, DeviceType, MEMORY_MB,
};
pub use fields::{FieldError, Fields, JsonObject, MAX_STORED_NUMBER, ValidationError};
pub use idempotency::IdempotencyKey;
pub use job::{
    CPU_REQUIRED, GPU_REQUIRED, JOB_NAME_CHARS, Job, JobStatus, MEMORY_REQUIRED, NON_NEGATIVE,
    SlaTier,
};
pub use lock::{StakeLock, StakeLocks};
pub use mfa::{
    Assurance, BACKUP_CODE_COUNT, BackupCode, MFA_LOGIN_TOKEN_PREFIX, MfaLoginToken,
    SecondFactorCode, TOTP_DIGITS, TotpCode,
};
pub use proposal::{
    DEFAULT_VOTING_PERIOD_HOURS, DESCRIPTION_CHARS, Proposal, ProposalStatus, TITLE_CHARS,
    VOTING_PERIOD_HOURS, Vote,
};
pub use recovery::{
    BaseUrl, MAILS_PER_HOUR, Mail, RECOVERY_TOKEN_CHARS, RecoveryToken, RecoveryTokenHash,
    TokenPurpose,
};
pub use refresh_token::{
    REFRESH_TOKEN_CHARS, REFRESH_TOKEN_PREFIX, RefreshToken, RefreshTokenHash,
};
pub use text::EscapedText;
pub use timestamp::rfc3339;
pub use user::{User, WalletAddress};
