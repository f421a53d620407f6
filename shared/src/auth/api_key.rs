//! API key secrets.
//!
//! A secret is `fog_sk_`, then 91 base64url characters of a 68-byte body, then 6 base64url
//! characters of the body's CRC32 (104 characters in all). The body is 32 random bytes (256 bits
//! from the operating system) followed by what the rate limiter must know before it has read
//! anything: the owner's user id (16 bytes), the key's id (16 bytes) and its hourly rate limit
//! (4 bytes, big-endian). None of those three is trusted as sent: the key item, found by the
//! key id, holds the SHA-256 of the whole secret, and a secret whose owner, id or limit was
//! changed hashes to something else and is refused (see docs/rate-limiting.md).
//!
//! The checksum lets a mistyped or made-up key be refused before any DynamoDB call, and secret
//! scanners recognise `fog_sk_` and can check the checksum offline.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const SECRET_PREFIX: &str = "fog_sk_";
const RANDOM_BYTES: usize = 32;
const BODY_BYTES: usize = RANDOM_BYTES + 16 + 16 + 4;
const BODY_CHARS: usize = (BODY_BYTES * 8).div_ceil(6);
const CHECKSUM_CHARS: usize = 6;
/// The length of every secret.
pub const SECRET_CHARS: usize = SECRET_PREFIX.len() + BODY_CHARS + CHECKSUM_CHARS;
/// How many of the secret's first characters a key's `prefix` shows: `fog_sk_` and five
/// characters (30 random bits) of the body.
pub const PREFIX_CHARS: usize = 12;

/// A secret, shown to its owner once. Its `Debug` never shows it.
pub struct KeySecret(String);

impl KeySecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySecret(***)")
    }
}

/// A new key's secret, and what is stored of it.
#[derive(Debug)]
pub struct IssuedKey {
    pub secret: KeySecret,
    /// SHA-256 of the secret, lower-case hex: all that is stored.
    pub hash: String,
    pub prefix: String,
}

/// Makes the secret of key `key_id` of `owner`, with `rate_limit` requests per hour.
pub fn issue_key(owner: Uuid, key_id: Uuid, rate_limit: u32) -> IssuedKey {
    let mut body = [0u8; BODY_BYTES];
    getrandom::fill(&mut body[..RANDOM_BYTES])
        .expect("the operating system's random source failed");
    body[RANDOM_BYTES..RANDOM_BYTES + 16].copy_from_slice(owner.as_bytes());
    body[RANDOM_BYTES + 16..RANDOM_BYTES + 32].copy_from_slice(key_id.as_bytes());
    body[RANDOM_BYTES + 32..].copy_from_slice(&rate_limit.to_be_bytes());
    let secret = format!(
        "{SECRET_PREFIX}{}{}",
        URL_SAFE_NO_PAD.encode(body),
        URL_SAFE_NO_PAD.encode(checksum(&body))
    );
    IssuedKey {
        hash: hash(&secret),
        prefix: secret[..PREFIX_CHARS].to_owned(),
        secret: KeySecret(secret),
    }
}

/// A well-formed secret as a request presents it: what it claims, and its hash. It holds no
/// secret, so it may be kept and passed around.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedKey {
    pub owner: Uuid,
    pub key_id: Uuid,
    pub rate_limit: u32,
    hash: String,
}

/// A secret that cannot be one this API issued: refused without any DynamoDB call.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed API key")]
pub struct MalformedKey;

impl PresentedKey {
    pub fn parse(raw: &str) -> Result<Self, MalformedKey> {
        if raw.len() != SECRET_CHARS || !raw.starts_with(SECRET_PREFIX) {
            return Err(MalformedKey);
        }
        let (body, sum) = raw[SECRET_PREFIX.len()..].split_at(BODY_CHARS);
        let body: [u8; BODY_BYTES] = URL_SAFE_NO_PAD
            .decode(body)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(MalformedKey)?;
        let sum = URL_SAFE_NO_PAD.decode(sum).map_err(|_| MalformedKey)?;
        if sum != checksum(&body) {
            return Err(MalformedKey);
        }
        let uuid = |at: usize| Uuid::from_slice(&body[at..at + 16]).expect("16 bytes are a UUID");
        let limit: [u8; 4] = body[RANDOM_BYTES + 32..]
            .try_into()
            .expect("4 bytes remain");
        Ok(Self {
            owner: uuid(RANDOM_BYTES),
            key_id: uuid(RANDOM_BYTES + 16),
            rate_limit: u32::from_be_bytes(limit),
            hash: hash(raw),
        })
    }

    /// SHA-256 of the secret as presented, lower-case hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Whether this is the secret whose hash was stored. In constant time, though what leaks
    /// would only be how much of a SHA-256 an attacker's guess shares.
    pub fn matches(&self, stored_hash: &str) -> bool {
        let (ours, theirs) = (self.hash.as_bytes(), stored_hash.as_bytes());
        ours.len() == theirs.len()
            && ours
                .iter()
                .zip(theirs)
                .fold(0u8, |difference, (a, b)| difference | (a ^ b))
                == 0
    }
}

impl fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedKey")
            .field("key_id", &self.key_id)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// SHA-256 rather than argon2id: a secret holds 256 random bits, so no guess can find it
/// however fast the hash, and a slow, salted hash buys nothing; it would cost every
/// key-authenticated request argon2id's 20 ms and 19 MiB, and it could not be recomputed to
/// compare with the one stored hash the key item holds.
fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn checksum(body: &[u8]) -> [u8; 4] {
    crc32fast::hash(body).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued() -> (IssuedKey, Uuid, Uuid) {
        let (owner, key_id) = (Uuid::new_v4(), Uuid::now_v7());
        (issue_key(owner, key_id, 1000), owner, key_id)
    }

    #[test]
    fn a_secret_has_the_documented_shape() {
        let (issued, ..) = issued();
        let secret = issued.secret.expose();
        assert_eq!(secret.len(), SECRET_CHARS);
        assert_eq!(SECRET_CHARS, 104);
        assert!(secret.starts_with("fog_sk_"));
        assert!(
            secret[7..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "base64url"
        );
        assert_eq!(issued.prefix, secret[..12]);
        assert_eq!(issued.hash.len(), 64);
        assert_ne!(issued.hash, secret);
        assert_eq!(format!("{:?}", issued.secret), "KeySecret(***)");
        assert!(!format!("{issued:?}").contains(secret));
    }

    #[test]
    fn secrets_carry_256_random_bits() {
        let (owner, key_id) = (Uuid::new_v4(), Uuid::now_v7());
        let a = issue_key(owner, key_id, 5);
        let b = issue_key(owner, key_id, 5);
        assert_ne!(a.secret.expose(), b.secret.expose());
        assert_ne!(a.prefix, b.prefix, "the prefix shows random characters");
    }

    #[test]
    fn a_secret_parses_back_to_its_claims_and_hash() {
        let (issued, owner, key_id) = issued();
        let presented = PresentedKey::parse(issued.secret.expose()).unwrap();
        assert_eq!(
            (presented.owner, presented.key_id, presented.rate_limit),
            (owner, key_id, 1000)
        );
        assert_eq!(presented.hash(), issued.hash);
        assert!(presented.matches(&issued.hash));
        assert!(!presented.matches(&issued.hash[1..]));
        assert!(!presented.matches(&"0".repeat(64)));
        assert!(!format!("{presented:?}").contains(&issued.hash));
    }

    #[test]
    fn a_mistyped_or_made_up_secret_is_malformed() {
        let (issued, ..) = issued();
        let secret = issued.secret.expose();
        let mut refused = vec![
            String::new(),
            "fog_sk_".into(),
            secret[..SECRET_CHARS - 1].into(),
            format!("{secret}A"),
            secret.replace("fog_sk_", "fog_pk_"),
            format!("FOG_SK_{}", &secret[7..]),
            format!("fog_sk_{}", "A".repeat(BODY_CHARS + CHECKSUM_CHARS)),
            format!("{}!{}", &secret[..50], &secret[51..]),
            format!(" {}", &secret[1..]),
        ];
        // Every single-character change, in the body and in the checksum.
        for at in [7, 20, 60, 97, 98, 103] {
            let mut chars: Vec<char> = secret.chars().collect();
            chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
            refused.push(chars.into_iter().collect());
        }
        for raw in refused {
            assert_eq!(PresentedKey::parse(&raw), Err(MalformedKey), "{raw:?}");
        }
    }

    #[test]
    fn a_changed_claim_with_a_recomputed_checksum_parses_but_hashes_differently() {
        let (issued, ..) = issued();
        let secret = issued.secret.expose();
        let mut body = URL_SAFE_NO_PAD.decode(&secret[7..7 + BODY_CHARS]).unwrap();
        let last = body.len() - 1;
        body[last] ^= 1; // the rate limit, 1000 -> 1001
        let forged = format!(
            "fog_sk_{}{}",
            URL_SAFE_NO_PAD.encode(&body),
            URL_SAFE_NO_PAD.encode(checksum(&body))
        );
        let presented = PresentedKey::parse(&forged).unwrap();
        assert_eq!(presented.rate_limit, 1001);
        assert!(!presented.matches(&issued.hash));
    }
}
