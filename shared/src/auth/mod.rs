//! Access tokens and password hashing.

mod password;
mod session;
mod tokens;

pub use password::{hash_password, map_hash_memory_apart, verify_password};
pub use session::authenticate;
pub use tokens::{Claims, IssuedToken, LEEWAY_SECONDS, TokenError, Tokens};
