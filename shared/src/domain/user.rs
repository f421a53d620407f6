use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Email, Username};

/// A platform wallet address: `0x` and 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WalletAddress(String);

impl WalletAddress {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        Self(format!("0x{hex}"))
    }

    /// Accepts either case; addresses compare case-insensitively.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid = raw.len() == 66
            && raw.starts_with("0x")
            && raw[2..].chars().all(|c| c.is_ascii_hexdigit());
        if valid {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err("must be 0x followed by 64 hex digits".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WalletAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user as stored and as returned by the API. Holds no credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub is_active: bool,
    pub is_admin: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login: Option<OffsetDateTime>,
    pub wallet_address: WalletAddress,
    /// Whether the user opened the link of a verification mail sent to `email` (issue 25);
    /// absent (users registered before) means not.
    #[serde(default)]
    pub email_verified: bool,
    /// Sessions whose epoch is lower are over ("log out everywhere", a password change). Stored
    /// by those writes alone (absent means 0), never answered.
    #[serde(default, skip_serializing)]
    pub session_epoch: u64,
    /// Moved on by each password reset, which kills every reset token issued before (absent
    /// means 0); never answered.
    #[serde(default, skip_serializing)]
    pub reset_generation: u64,
}

impl User {
    pub fn new(username: &Username, email: &Email, now: OffsetDateTime) -> Self {
        Self {
            id: Uuid::new_v4(),
            username: username.as_str().to_owned(),
            email: email.as_str().to_owned(),
            is_active: true,
            is_admin: false,
            created_at: now,
            last_login: None,
            wallet_address: WalletAddress::generate(),
            email_verified: false,
            session_epoch: 0,
            reset_generation: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_addresses_have_the_platform_format_and_differ() {
        let a = WalletAddress::generate();
        let b = WalletAddress::generate();
        assert_ne!(a, b);
        assert_eq!(WalletAddress::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn addresses_compare_case_insensitively() {
        let lower = format!("0x{}", "ab".repeat(32));
        let upper = format!("0x{}", "AB".repeat(32));
        assert_eq!(
            WalletAddress::parse(&upper).unwrap(),
            WalletAddress::parse(&lower).unwrap()
        );
        assert!(WalletAddress::parse(&lower[..65]).is_err());
        assert!(WalletAddress::parse(&format!("0x{}", "g".repeat(64))).is_err());
    }
}
