//! Access tokens, API key secrets, password hashing, and who a request acts as.

mod api_key;
mod mfa;
mod password;
mod principal;
mod tokens;

pub use api_key::{
    IssuedKey, KeySecret, MalformedKey, PREFIX_CHARS, PresentedKey, SECRET_CHARS, SECRET_PREFIX,
    issue_key,
};
pub use mfa::{MfaKeyError, MfaKeys, TOTP_ISSUER, TOTP_STEP_SECONDS, TotpSecret, qr_svg};
pub use password::{PasswordError, hash_password, map_hash_memory_apart, verify_password};
pub use principal::{AuthError, Credentials, Principal};
pub use tokens::{
    Claims, IssuedToken, JwtKeys, LEEWAY_SECONDS, TokenError, TokenFault, stated_username,
};
