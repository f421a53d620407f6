//! Account recovery by email (issue 25): the one-time tokens a mail carries (a password reset,
//! an address's verification), and the mails themselves. A token is 32 random bytes, base64url;
//! only its SHA-256 is stored, so a copy of the table resets no password. `Debug` hides it.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

const TOKEN_BYTES: usize = 32;
/// The unpadded base64url of 32 bytes.
pub const RECOVERY_TOKEN_CHARS: usize = (TOKEN_BYTES * 8).div_ceil(6);
/// Mails of one kind to one address (resets) or one user (verifications) in an hour.
pub const MAILS_PER_HOUR: u64 = 3;

/// What a token lets its holder do, once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    PasswordReset,
    EmailVerification,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "reset",
            Self::EmailVerification => "verify",
        }
    }

    /// The page of the frontend the mail's link opens.
    pub fn page(self) -> &'static str {
        match self {
            Self::PasswordReset => "reset-password",
            Self::EmailVerification => "verify-email",
        }
    }
}

/// A token as mailed: never stored, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryToken(String);

/// The SHA-256 of a token, lower-case hex: how it is stored and looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryTokenHash(String);

impl RecoveryToken {
    /// 256 bits from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A token of the right form (its one canonical spelling), or `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        (bytes.len() == TOKEN_BYTES && URL_SAFE_NO_PAD.encode(&bytes) == raw)
            .then(|| Self(raw.to_owned()))
    }

    pub fn hash(&self) -> RecoveryTokenHash {
        let digest = Sha256::digest(self.0.as_bytes());
        RecoveryTokenHash(digest.iter().map(|byte| format!("{byte:02x}")).collect())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RecoveryToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryToken(..)")
    }
}

impl RecoveryTokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The frontend's address, to which mailed links point: `http(s)://host[:port][/path]`, without
/// a trailing `/`, a query or a fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"))
            .ok_or("must start with https:// or http://")?;
        let host = rest.split('/').next().unwrap_or_default();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~/:".contains(c);
        if host.is_empty() || !rest.chars().all(allowed) {
            return Err(
                "must be a plain address (no query, fragment, spaces or credentials)".into(),
            );
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The link a mail carries: `<base>/<page>?token=<token>`.
    pub fn link(&self, purpose: TokenPurpose, token: &RecoveryToken) -> String {
        format!("{}/{}?token={}", self.0, purpose.page(), token.expose())
    }
}

/// One mail: its recipient, subject and text and HTML bodies.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl fmt::Debug for Mail {
    /// The link's token stays out of every log: only the recipient and subject print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Mail {
    /// The password-reset mail: what was asked, from where, the link, and what to do otherwise.
    pub fn password_reset(to: &str, link: &str, source_ip: Option<&str>, minutes: i64) -> Self {
        Self::compose(
            to,
            "Reset your Fog Compute password",
            &format!(
                "Someone (we hope you) asked to reset the password of the Fog Compute account of \
                 this address{}.",
                from_ip(source_ip)
            ),
            ("Choose a new password", link),
            &format!(
                "The link works once, for {minutes} minutes. Resetting the password signs you \
                 out everywhere."
            ),
            "If you did not ask for this, ignore this mail: your password stays as it is. If it \
             keeps happening, tell your administrator.",
        )
    }

    /// The verification mail a registration (or a resend) sends.
    pub fn verification(to: &str, link: &str, source_ip: Option<&str>, hours: i64) -> Self {
        Self::compose(
            to,
            "Verify your Fog Compute email address",
            &format!(
                "Someone (we hope you) registered a Fog Compute account with this address{}, or \
                 asked for this mail again.",
                from_ip(source_ip)
            ),
            ("Verify this address", link),
            &format!("The link works once, for {hours} hours."),
            "If you did not register, ignore this mail: the account stays unverified and no \
             mail will prove it is yours.",
        )
    }

    fn compose(
        to: &str,
        subject: &str,
        asked: &str,
        (action, link): (&str, &str),
        validity: &str,
        otherwise: &str,
    ) -> Self {
        let text = format!("{asked}\n\n{action}: {link}\n\n{validity}\n\n{otherwise}\n");
        let html = format!(
            "<!doctype html><html><body><p>{}</p><p><a href=\"{link}\">{}</a></p>\
             <p>Or open this address: {link}</p><p>{}</p><p>{}</p></body></html>",
            escape(asked),
            escape(action),
            escape(validity),
            escape(otherwise),
            link = escape(link),
        );
        Self {
            to: to.to_owned(),
            subject: subject.to_owned(),
            text,
            html,
        }
    }
}

fn from_ip(source_ip: Option<&str>) -> String {
    source_ip
        .map(|ip| format!(" from the IP address {ip}"))
        .unwrap_or_default()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_random_bytes_in_their_canonical_spelling() {
        let token = RecoveryToken::generate();
        assert_eq!(token.expose().len(), RECOVERY_TOKEN_CHARS);
        assert_ne!(token, RecoveryToken::generate());
        assert_eq!(RecoveryToken::parse(token.expose()), Some(token.clone()));
        assert_eq!(token.hash().as_str().len(), 64);
        assert!(!format!("{token:?}").contains(token.expose()));
        for bad in [
            "",
            "abc",
            &token.expose()[1..],
            &format!("{}=", token.expose()),
        ] {
            assert!(RecoveryToken::parse(bad).is_none(), "{bad:?}");
        }
        // The last character carries 4 unused bits: only the spelling with them zero parses.
        let zero = "A".repeat(RECOVERY_TOKEN_CHARS);
        assert!(RecoveryToken::parse(&zero).is_some());
        assert!(RecoveryToken::parse(&format!("{}B", &zero[1..])).is_none());
    }

    #[test]
    fn base_urls_are_plain_addresses() {
        let base = BaseUrl::parse("https://app.example.com/").unwrap();
        let token = RecoveryToken::generate();
        assert_eq!(
            base.link(TokenPurpose::PasswordReset, &token),
            format!(
                "https://app.example.com/reset-password?token={}",
                token.expose()
            )
        );
        assert!(BaseUrl::parse("http://localhost:5173").is_ok());
        for bad in [
            "app.example.com",
            "ftp://x",
            "https://",
            "https://a/?q=1",
            "https://u@a",
            "https://a b",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_mail_says_what_was_asked_from_where_and_what_to_do_otherwise() {
        let mail = Mail::password_reset(
            "a@example.com",
            "https://x/reset-password?token=t",
            Some("203.0.113.9"),
            60,
        );
        assert!(mail.text.contains("203.0.113.9"));
        assert!(mail.text.contains("https://x/reset-password?token=t"));
        assert!(mail.text.contains("did not ask"));
        assert!(
            mail.html
                .contains("href=\"https://x/reset-password?token=t\"")
        );
        assert!(!format!("{mail:?}").contains("token=t"));
    }
}
