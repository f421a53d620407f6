//! The second factor's secrets: TOTP secrets, encrypted at rest with AES-256-GCM, and backup
//! codes, stored only as HMAC-SHA-256 under a server key. Both keys are derived from the MFA key
//! (`MFA_KEY`, or the Secrets Manager secret `MFA_KEY_ARN` names), which never sits in the table.
//!
//! Backup codes are keyed hashes, not argon2id: a code is 40 random bits (not a password a person
//! chose), so a slow hash adds little against a thief who has the key too, while the key alone
//! makes a stolen table useless (no offline guessing without it) and a check costs microseconds,
//! not the login's argon2id seconds.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use uuid::Uuid;

use crate::domain::{BackupCode, TotpCode};

type HmacSha256 = hmac::Hmac<Sha256>;

const ENCRYPTION_KEY_LABEL: &[u8] = b"fog-compute TOTP secret encryption key v1";
const BACKUP_CODE_KEY_LABEL: &[u8] = b"fog-compute backup code hash key v1";
/// A TOTP secret's bytes: 160 bits, as RFC 4226 recommends.
const TOTP_SECRET_BYTES: usize = 20;
const NONCE_BYTES: usize = 12;
/// Seconds per TOTP step.
pub const TOTP_STEP_SECONDS: u64 = 30;
/// The issuer an authenticator app shows, and the label's prefix.
pub const TOTP_ISSUER: &str = "FogCompute";

#[derive(Debug, thiserror::Error)]
pub enum MfaKeyError {
    /// A stored secret that does not decrypt under this key (another key, or altered).
    #[error("a stored TOTP secret does not decrypt")]
    Undecryptable,
}

/// A TOTP secret, in the clear: only in memory, for the request that needs it.
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; TOTP_SECRET_BYTES];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Self(bytes)
    }

    /// RFC 4648 base32, unpadded, as authenticator apps take it.
    pub fn base32(&self) -> String {
        Secret::from(self.0.clone()).to_base32()
    }

    /// The `otpauth://` URI an authenticator app scans.
    pub fn provisioning_uri(&self, username: &str) -> String {
        format!(
            "otpauth://totp/{TOTP_ISSUER}:{username}?secret={}&issuer={TOTP_ISSUER}",
            self.base32()
        )
    }

    fn totp(&self) -> Totp {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(TOTP_STEP_SECONDS)
            .with_secret(self.0.clone())
            .build()
            .expect("a 160-bit secret, 6 digits and 30-second steps are RFC 6238's")
    }

    /// The time step `code` is the code of, at `now` (epoch s) give or take one step; `None` when
    /// it is none of the three.
    pub fn matching_step(&self, code: &TotpCode, now: i64) -> Option<u64> {
        self.totp()
            .check(code.as_str(), u64::try_from(now).unwrap_or_default())
    }
}

/// The keys of the second factor, derived once per cold start from the MFA key.
pub struct MfaKeys {
    cipher: Aes256Gcm,
    backup_code_key: [u8; 32],
}

impl MfaKeys {
    /// The key's length is checked by `Config`.
    pub fn new(key: &SecretString) -> Self {
        let master = key.expose_secret().as_bytes();
        let encryption_key: [u8; 32] = hmac_sha256(master, ENCRYPTION_KEY_LABEL);
        Self {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(encryption_key)),
            backup_code_key: hmac_sha256(master, BACKUP_CODE_KEY_LABEL),
        }
    }

    /// `secret` encrypted for `user_id` (bound to it as associated data, so that a stored secret
    /// copied to another user's item does not decrypt): base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, secret: &TotpSecret, user_id: Uuid) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).expect("the operating system's random source failed");
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &secret.0,
                    aad: user_id.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts a 20-byte message");
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        STANDARD.encode(stored)
    }

    /// The secret `seal` stored for `user_id`.
    pub fn open(&self, stored: &str, user_id: Uuid) -> Result<TotpSecret, MfaKeyError> {
        let bytes = STANDARD
            .decode(stored)
            .map_err(|_| MfaKeyError::Undecryptable)?;
        if bytes.len() <= NONCE_BYTES {
            return Err(MfaKeyError::Undecryptable);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().expect("split at the nonce's length");
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: user_id.as_bytes(),
                },
            )
            .map(TotpSecret)
            .map_err(|_| MfaKeyError::Undecryptable)
    }

    /// The keyed hash a backup code is stored as: HMAC-SHA-256(backup code key, user id ‖ code),
    /// lower-case hex. The user id in it keeps one user's hashes from matching another's codes.
    pub fn backup_code_hash(&self, user_id: Uuid, code: &BackupCode) -> String {
        let mut mac =
            HmacSha256::new_from_slice(&self.backup_code_key).expect("HMAC takes any key length");
        mac.update(user_id.as_bytes());
        mac.update(code.as_str().as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// The QR code of `uri`, as an SVG document.
pub fn qr_svg(uri: &str) -> String {
    qrcode::QrCode::new(uri.as_bytes())
        .expect("a provisioning URI fits a QR code")
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build()
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(key: &str) -> MfaKeys {
        MfaKeys::new(&SecretString::from(key))
    }

    const KEY: &str = "an-mfa-key-that-is-at-least-32-bytes-long";

    #[test]
    fn a_sealed_secret_opens_for_its_user_under_its_key_only() {
        let secret = TotpSecret::generate();
        let user = Uuid::new_v4();
        let sealed = keys(KEY).seal(&secret, user);
        assert!(!sealed.contains(&secret.base32()));
        assert_ne!(sealed, keys(KEY).seal(&secret, user), "a nonce of its own");
        assert_eq!(keys(KEY).open(&sealed, user).unwrap().0, secret.0);
        assert!(keys(KEY).open(&sealed, Uuid::new_v4()).is_err());
        assert!(
            keys("another-mfa-key-of-at-least-32-bytes!!")
                .open(&sealed, user)
                .is_err()
        );
        assert!(keys(KEY).open("AAAA", user).is_err());
    }

    #[test]
    fn backup_code_hashes_are_keyed_and_per_user() {
        let code = BackupCode::generate();
        let user = Uuid::new_v4();
        let hash = keys(KEY).backup_code_hash(user, &code);
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, keys(KEY).backup_code_hash(user, &code));
        assert_ne!(hash, keys(KEY).backup_code_hash(Uuid::new_v4(), &code));
        assert_ne!(
            hash,
            keys("another-mfa-key-of-at-least-32-bytes!!").backup_code_hash(user, &code)
        );
    }

    /// RFC 6238's SHA-1 test vector (its 8 digits' last 6), one step of skew either way, no more.
    #[test]
    fn codes_match_their_step_and_one_either_side() {
        let secret = TotpSecret(b"12345678901234567890".to_vec());
        let code = TotpCode::parse("287082").unwrap();
        assert_eq!(secret.matching_step(&code, 59), Some(1));
        assert_eq!(secret.matching_step(&code, 89), Some(1));
        assert_eq!(secret.matching_step(&code, 31), Some(1));
        assert_eq!(secret.matching_step(&code, 90), None);
        assert_eq!(secret.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            secret.provisioning_uri("alice"),
            "otpauth://totp/FogCompute:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=FogCompute"
        );
        assert!(qr_svg(&secret.provisioning_uri("alice")).starts_with("<?xml"));
    }
}
