//! Domain types. Each validates on construction, so a value of the type is always valid.

mod credentials;
mod fields;
mod user;

pub use credentials::{Email, Password, Username};
pub use fields::{FieldError, Fields};
pub use user::{User, WalletAddress};
