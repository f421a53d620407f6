//! Access tokens, password hashing, and who a request acts as.

mod password;
mod principal;
mod tokens;

pub use password::{PasswordError, hash_password, map_hash_memory_apart, verify_password};
pub use principal::{AuthError, Credentials, Principal};
pub use tokens::{Claims, IssuedToken, JwtKeys, LEEWAY_SECONDS, TokenError};
