use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What every refresh token starts with: one look tells it from an access token (a JWT) or an
/// API key, in a client's storage or a leaked log.
pub const REFRESH_TOKEN_PREFIX: &str = "fog_rt_";
const SECRET_BYTES: usize = 32;
const PAYLOAD_BYTES: usize = 16 + 16 + SECRET_BYTES;
/// `fog_rt_` and the base64url (unpadded) of the user id, the session id and the secret.
pub const REFRESH_TOKEN_CHARS: usize = REFRESH_TOKEN_PREFIX.len() + (PAYLOAD_BYTES * 8).div_ceil(6);

/// An opaque refresh token: `fog_rt_` + base64url(user id ‖ session id ‖ 256-bit secret).
///
/// The ids in it are not secret (the access token's `sub` and `sid` say as much) and prove
/// nothing: they only let the rate limiter's one read fetch the token's item, its session and its
/// user together. What proves the token is its SHA-256, the key of the one item that holds it;
/// a token with made-up ids names no item. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    user_id: Uuid,
    session_id: Uuid,
    text: String,
}

/// The SHA-256 of a refresh token, lower-case hex: how the token is stored and looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenHash(String);

impl RefreshTokenHash {
    /// A hash as stored (64 lower-case hex digits), or `None`.
    pub fn parse(hex: &str) -> Option<Self> {
        (hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(hex.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl RefreshToken {
    /// The first refresh token of a session: 256 bits from the operating system's random source.
    pub fn generate(user_id: Uuid, session_id: Uuid) -> Self {
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret).expect("the operating system's random source failed");
        Self::with_secret(user_id, session_id, &secret)
    }

    /// The token of a session with this secret (a successor's is derived from its predecessor).
    pub fn with_secret(user_id: Uuid, session_id: Uuid, secret: &[u8; SECRET_BYTES]) -> Self {
        let mut payload = Vec::with_capacity(PAYLOAD_BYTES);
        payload.extend_from_slice(user_id.as_bytes());
        payload.extend_from_slice(session_id.as_bytes());
        payload.extend_from_slice(secret);
        Self {
            user_id,
            session_id,
            text: format!("{REFRESH_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(payload)),
        }
    }

    /// A token of the right form, or `None` (an access token, a truncated copy, anything else).
    pub fn parse(raw: &str) -> Option<Self> {
        let encoded = raw.strip_prefix(REFRESH_TOKEN_PREFIX)?;
        if raw.len() != REFRESH_TOKEN_CHARS {
            return None;
        }
        let payload = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        let user_id = Uuid::from_slice(payload.get(..16)?).ok()?;
        let session_id = Uuid::from_slice(payload.get(16..32)?).ok()?;
        let token = Self {
            user_id,
            session_id,
            text: raw.to_owned(),
        };
        // One spelling per token: base64url has a canonical form, and only that one is accepted.
        (payload.len() == PAYLOAD_BYTES
            && Self::with_secret(user_id, session_id, payload[32..].try_into().ok()?) == token)
            .then_some(token)
    }

    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    pub fn session_id(&self) -> Uuid {
        self.session_id
    }

    /// The token itself, for the one answer that hands it out.
    pub fn expose(&self) -> &str {
        &self.text
    }

    pub fn hash(&self) -> RefreshTokenHash {
        let digest = Sha256::digest(self.text.as_bytes());
        RefreshTokenHash(digest.iter().map(|byte| format!("{byte:02x}")).collect())
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_form_and_carry_their_ids() {
        let (user, session) = (Uuid::new_v4(), Uuid::now_v7());
        let token = RefreshToken::generate(user, session);
        assert!(token.expose().starts_with("fog_rt_"));
        assert_eq!(token.expose().len(), REFRESH_TOKEN_CHARS);
        assert_eq!(REFRESH_TOKEN_CHARS, 93);
        let parsed = RefreshToken::parse(token.expose()).unwrap();
        assert_eq!((parsed.user_id(), parsed.session_id()), (user, session));
        assert_eq!(parsed, token);
        assert_ne!(RefreshToken::generate(user, session), token);
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_whole_token_in_hex() {
        let token = RefreshToken::with_secret(Uuid::nil(), Uuid::nil(), &[0; 32]);
        let hash = token.hash();
        assert_eq!(hash.as_str().len(), 64);
        assert_eq!(RefreshTokenHash::parse(hash.as_str()), Some(hash.clone()));
        // sha256("fog_rt_" + "A" * 86), computed independently (Python hashlib).
        assert_eq!(token.expose(), format!("fog_rt_{}", "A".repeat(86)));
        assert_eq!(
            hash.as_str(),
            "64a11551df1d74518e0cc8be5300e59cf26052fec3b88913b27721f9871d8c84"
        );
        assert!(!hash.as_str().contains(token.expose()));
    }

    #[test]
    fn anything_else_is_refused() {
        let token = RefreshToken::generate(Uuid::new_v4(), Uuid::now_v7());
        let text = token.expose();
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let mut non_canonical = text.to_owned();
        // The last character carries 2 unused bits in base64url: flipping them changes no byte.
        let last = non_canonical.pop().unwrap();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.iter().position(|&c| c == last as u8).unwrap();
        non_canonical.push(alphabet[index ^ 1] as char);
        for bad in [
            "",
            "fog_rt_",
            jwt,
            &text[..text.len() - 1],
            &format!("{text}A"),
            &text.replace("fog_rt_", "fog_sk_"),
            &text.replace("fog_rt_", "FOG_RT_"),
            &format!("{}={}", &text[..text.len() - 1], ""),
            &format!("{}!", &text[..text.len() - 1]),
            &non_canonical,
        ] {
            assert!(RefreshToken::parse(bad).is_none(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let token = RefreshToken::generate(Uuid::new_v4(), Uuid::now_v7());
        let debug = format!("{token:?}");
        assert!(!debug.contains(&token.expose()[7..20]), "{debug}");
    }
}
