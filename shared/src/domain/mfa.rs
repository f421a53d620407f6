//! The second factor (issue 24): the codes a user types, the opaque token a login's second step
//! presents, and how a session was signed in to (its tokens' `amr` and `aal`).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The digits of a TOTP code (RFC 6238 with SHA-1 and 30-second steps, as authenticator apps
/// default to).
pub const TOTP_DIGITS: usize = 6;
/// How many backup codes a setup or a regeneration hands out.
pub const BACKUP_CODE_COUNT: usize = 10;
/// A backup code's characters (RFC 4648 base32: no 0, 1, 8 or 9 to misread), 5 bits each: 40
/// bits, shown as `XXXX-XXXX`.
const BACKUP_CODE_CHARS: usize = 8;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A six-digit TOTP code (openapi.yaml's pattern `^[0-9]{6}$`).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCode(String);

impl TotpCode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() == TOTP_DIGITS && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!("must be {TOTP_DIGITS} digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A backup code, in its one stored spelling: eight upper-case base32 characters. Typed with or
/// without its hyphen in the middle, in either case (openapi.yaml's pattern
/// `^[A-Za-z2-7]{4}-?[A-Za-z2-7]{4}$`).
#[derive(Clone, PartialEq, Eq)]
pub struct BackupCode(String);

impl BackupCode {
    /// A new code: 40 bits from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; BACKUP_CODE_CHARS];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Self(
            bytes
                .iter()
                .map(|byte| char::from(BASE32[usize::from(byte % 32)]))
                .collect(),
        )
    }

    /// A fresh set of `BACKUP_CODE_COUNT` distinct codes.
    pub fn generate_set() -> Vec<Self> {
        let mut codes: Vec<Self> = Vec::with_capacity(BACKUP_CODE_COUNT);
        while codes.len() < BACKUP_CODE_COUNT {
            let code = Self::generate();
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        codes
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let half = BACKUP_CODE_CHARS / 2;
        let joined = match (raw.len(), raw.get(half..=half)) {
            (9, Some("-")) => format!("{}{}", &raw[..half], &raw[half + 1..]),
            _ => raw.to_owned(),
        };
        let code = joined.to_ascii_uppercase();
        if code.len() == BACKUP_CODE_CHARS && code.bytes().all(|b| BASE32.contains(&b)) {
            Ok(Self(code))
        } else {
            Err("must be a backup code (XXXX-XXXX)".to_owned())
        }
    }

    /// The stored spelling, which the keyed hash is of.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As shown to the user, once: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..4], &self.0[4..])
    }
}

/// What a user types as their second factor: a TOTP code, or one of their backup codes.
#[derive(Clone)]
pub enum SecondFactorCode {
    Totp(TotpCode),
    Backup(BackupCode),
}

impl SecondFactorCode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        TotpCode::parse(raw)
            .map(Self::Totp)
            .or_else(|_| BackupCode::parse(raw).map(Self::Backup))
            .map_err(|_| "must be a 6-digit code or a backup code (XXXX-XXXX)".to_owned())
    }
}

// Codes are secrets: `Debug` never shows them.
macro_rules! hidden_debug {
    ($($name:ident),*) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    )*};
}
hidden_debug!(TotpCode, BackupCode, SecondFactorCode, MfaLoginToken);

/// What every token of a login's second step starts with.
pub const MFA_LOGIN_TOKEN_PREFIX: &str = "fog_mfa_";
const MFA_SECRET_BYTES: usize = 32;
const MFA_PAYLOAD_BYTES: usize = 16 + MFA_SECRET_BYTES;
const MFA_LOGIN_TOKEN_CHARS: usize =
    MFA_LOGIN_TOKEN_PREFIX.len() + (MFA_PAYLOAD_BYTES * 8).div_ceil(6);

/// The `temp_token` a login answers a user with a second factor: `fog_mfa_` + base64url(user id
/// ‖ 256-bit secret). Opaque to the client and stored only as its SHA-256; the user id in it
/// proves nothing (as a refresh token's) and only lets the rate limiter's one read fetch the
/// token's item, the user's factor and failures together.
#[derive(Clone, PartialEq, Eq)]
pub struct MfaLoginToken {
    user_id: Uuid,
    text: String,
}

impl MfaLoginToken {
    pub fn generate(user_id: Uuid) -> Self {
        let mut secret = [0u8; MFA_SECRET_BYTES];
        getrandom::fill(&mut secret).expect("the operating system's random source failed");
        Self::with_secret(user_id, &secret)
    }

    fn with_secret(user_id: Uuid, secret: &[u8]) -> Self {
        let mut payload = Vec::with_capacity(MFA_PAYLOAD_BYTES);
        payload.extend_from_slice(user_id.as_bytes());
        payload.extend_from_slice(secret);
        Self {
            user_id,
            text: format!(
                "{MFA_LOGIN_TOKEN_PREFIX}{}",
                URL_SAFE_NO_PAD.encode(payload)
            ),
        }
    }

    /// A token of the right form (in its one canonical spelling), or `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        let encoded = raw.strip_prefix(MFA_LOGIN_TOKEN_PREFIX)?;
        if raw.len() != MFA_LOGIN_TOKEN_CHARS {
            return None;
        }
        let payload = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        let user_id = Uuid::from_slice(payload.get(..16)?).ok()?;
        let token = Self::with_secret(user_id, payload.get(16..)?);
        (payload.len() == MFA_PAYLOAD_BYTES && token.text == raw).then_some(token)
    }

    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// The token itself, for the one answer that hands it out.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// Its SHA-256, lower-case hex: the key of its item.
    pub fn hash(&self) -> String {
        Sha256::digest(self.text.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// How a session's user signed in: a password alone, or a password and a second factor. Its
/// access tokens say so (`amr`, RFC 8176; `aal`, NIST SP 800-63B), and refreshes keep it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Assurance {
    #[default]
    Password,
    SecondFactor,
}

impl Assurance {
    /// The methods used, as RFC 8176 names them.
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Self::Password => &["pwd"],
            Self::SecondFactor => &["pwd", "otp"],
        }
    }

    pub fn aal(self) -> &'static str {
        match self {
            Self::Password => "aal1",
            Self::SecondFactor => "aal2",
        }
    }

    /// From a token's `aal` (absent from tokens issued before it existed: a password alone).
    pub fn from_aal(aal: Option<&str>) -> Self {
        match aal {
            Some("aal2") => Self::SecondFactor,
            _ => Self::Password,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_in_their_forms_only() {
        assert_eq!(TotpCode::parse("012345").unwrap().as_str(), "012345");
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６", " 012345"] {
            assert!(TotpCode::parse(bad).is_err(), "{bad:?}");
        }
        let code = BackupCode::generate();
        assert_eq!(BackupCode::parse(&code.display()).unwrap(), code);
        assert_eq!(
            BackupCode::parse(&code.display().to_lowercase()).unwrap(),
            code
        );
        assert_eq!(
            BackupCode::parse("abcd2345").unwrap().display(),
            "ABCD-2345"
        );
        for bad in [
            "ABCD-234",
            "ABCD-23450",
            "ABCD-2301",
            "",
            "AB-CD-EFGH",
            "ABCDEFGH-",
            " ABCDEFGH",
        ] {
            assert!(BackupCode::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            SecondFactorCode::parse("123456"),
            Ok(SecondFactorCode::Totp(_))
        ));
        assert!(matches!(
            SecondFactorCode::parse("ABCD-EFGH"),
            Ok(SecondFactorCode::Backup(_))
        ));
        assert_eq!(BackupCode::generate_set().len(), BACKUP_CODE_COUNT);
    }

    #[test]
    fn a_login_token_round_trips_and_nothing_else_parses() {
        let user = Uuid::new_v4();
        let token = MfaLoginToken::generate(user);
        let parsed = MfaLoginToken::parse(token.expose()).unwrap();
        assert_eq!(parsed.user_id(), user);
        assert_eq!(parsed.hash(), token.hash());
        assert_ne!(MfaLoginToken::generate(user).hash(), token.hash());
        let mut altered = token.expose().to_owned();
        altered.pop();
        assert!(MfaLoginToken::parse(&altered).is_none());
        assert!(MfaLoginToken::parse("fog_rt_x").is_none());
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn assurance_names_its_methods() {
        assert_eq!(Assurance::Password.amr(), ["pwd"]);
        assert_eq!(Assurance::SecondFactor.amr(), ["pwd", "otp"]);
        assert_eq!(Assurance::from_aal(Some("aal2")), Assurance::SecondFactor);
        assert_eq!(Assurance::from_aal(None), Assurance::Password);
    }
}
