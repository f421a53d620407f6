use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;
use validator::ValidateEmail;

pub const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=50;
pub const EMAIL_MAX_CHARS: usize = 100;
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=256;

/// Whether `c` may appear in a username: an ASCII letter or digit, `_` or `-` (the old backend's
/// alphabet).
pub fn is_username_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// ASCII letters, digits, `_` and `-`, stored lower-cased, so uniqueness is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let length = raw.chars().count();
        if !USERNAME_CHARS.contains(&length) {
            return Err(format!(
                "must be {} to {} characters long",
                USERNAME_CHARS.start(),
                USERNAME_CHARS.end()
            ));
        }
        if !raw.chars().all(is_username_char) {
            return Err("may contain only letters, digits, _ and -".into());
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A valid address of at most 100 characters, stored lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > EMAIL_MAX_CHARS {
            return Err(format!("must be at most {EMAIL_MAX_CHARS} characters long"));
        }
        if !raw.validate_email() {
            return Err("must be a valid email address".into());
        }
        Ok(Self(raw.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

static COMMON_PASSWORDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .collect()
});

/// A password as it is hashed and verified: in NFKC, so that "é" typed as one code point or as
/// e + combining accent (or a letter in its full-width form) is one password wherever typed.
pub fn normalized_password(raw: &str) -> SecretString {
    SecretString::from(raw.nfkc().collect::<String>())
}

/// A new password that meets the strength rules, in NFKC (`normalized_password`); the rules
/// apply to the normalized form. Never printed: `Debug` shows a placeholder.
#[derive(Debug)]
pub struct Password(SecretString);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let normalized = normalized_password(raw);
        let raw = normalized.expose_secret();
        let length = raw.chars().count();
        if !PASSWORD_CHARS.contains(&length) {
            return Err(format!(
                "must be {} to {} characters long",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            ));
        }
        let mut missing = Vec::new();
        if !raw.chars().any(char::is_uppercase) {
            missing.push("an upper-case letter");
        }
        if !raw.chars().any(char::is_lowercase) {
            missing.push("a lower-case letter");
        }
        if !raw.chars().any(|c| c.is_ascii_digit()) {
            missing.push("a digit");
        }
        if !missing.is_empty() {
            return Err(format!("must contain {}", missing.join(", ")));
        }
        if COMMON_PASSWORDS
            .binary_search(&raw.to_lowercase().as_str())
            .is_ok()
        {
            return Err("is too common; choose a less guessable password".into());
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_length_boundaries() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(50)).is_ok());
        assert!(Username::parse(&"a".repeat(51)).is_err());
    }

    #[test]
    fn username_is_the_old_backends_alphabet_lower_cased() {
        assert_eq!(Username::parse("AliCe42").unwrap().as_str(), "alice42");
        assert_eq!(
            Username::parse("Refresh_User-1").unwrap().as_str(),
            "refresh_user-1"
        );
        for edge in ["___", "---", "-a-", "_1"] {
            let padded = format!("{edge}x");
            assert_eq!(Username::parse(&padded).unwrap().as_str(), padded);
        }
        for bad in [
            "ali ce",
            "alice!",
            "álice",
            "alice\u{0}",
            "ali.ce",
            "ali+ce",
            "alice@x",
            "a#b",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn email_rules() {
        assert_eq!(
            Email::parse("Bob@Example.COM").unwrap().as_str(),
            "bob@example.com"
        );
        assert!(Email::parse("not-an-email").is_err());
        assert!(Email::parse("a@").is_err());
        let at_limit = format!("user@{}.{}.com", "d".repeat(50), "e".repeat(40));
        assert_eq!(at_limit.len(), EMAIL_MAX_CHARS);
        assert!(Email::parse(&at_limit).is_ok());
        assert!(
            Email::parse(&format!("x{at_limit}"))
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn password_length_boundaries() {
        assert!(Password::parse("Abcdef1").is_err());
        assert!(Password::parse("Abcdxf12").is_ok());
        let long = format!("Aa1{}", "x".repeat(61));
        assert_eq!(long.chars().count(), 64);
        assert_eq!(Password::parse(&long).unwrap().expose(), long);
        assert!(Password::parse(&format!("Aa1{}", "x".repeat(253))).is_ok());
        assert!(Password::parse(&format!("Aa1{}", "x".repeat(254))).is_err());
    }

    #[test]
    fn password_needs_each_character_class() {
        assert!(
            Password::parse("abcdefg1")
                .unwrap_err()
                .contains("upper-case")
        );
        assert!(
            Password::parse("ABCDEFG1")
                .unwrap_err()
                .contains("lower-case")
        );
        assert!(Password::parse("Abcdefgh").unwrap_err().contains("digit"));
    }

    #[test]
    fn common_passwords_are_refused() {
        assert!(COMMON_PASSWORDS.len() >= 10_000);
        assert!(COMMON_PASSWORDS.is_sorted());
        for common in ["Passw0rd", "Password1", "Qwerty123"] {
            assert!(
                Password::parse(common).unwrap_err().contains("too common"),
                "{common} was accepted"
            );
        }
    }

    #[test]
    fn passwords_are_kept_in_nfkc() {
        let composed = Password::parse("Caf\u{e9}-Compute-2024").unwrap();
        let decomposed = Password::parse("Cafe\u{301}-Compute-2024").unwrap();
        assert_eq!(composed.expose(), decomposed.expose());
        assert_eq!(composed.expose(), "Caf\u{e9}-Compute-2024");
        assert_eq!(
            normalized_password("Cafe\u{301}-Compute-2024").expose_secret(),
            composed.expose()
        );
        // Full-width letters are the ASCII ones: the common-password list still applies.
        assert!(
            Password::parse("\u{ff30}assw0rd")
                .unwrap_err()
                .contains("too common")
        );
    }

    #[test]
    fn password_debug_hides_the_value() {
        let password = Password::parse("Vx9-unusual-Secret").unwrap();
        assert!(!format!("{password:?}").contains("unusual"));
    }
}
