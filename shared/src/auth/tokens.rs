use hmac::{KeyInit, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Assurance, RefreshToken, RefreshTokenHash, User};

type HmacSha256 = hmac::Hmac<Sha256>;

/// What the key that derives refresh-token successors is derived with, from the JWT secret: a key
/// of its own, so that no HMAC the API computes for one purpose serves another.
const SUCCESSOR_KEY_LABEL: &[u8] = b"fog-compute refresh-token successor key v1";
/// What an access token's id is derived with, from its refresh token's hash, at a rotation.
const ROTATION_JTI_LABEL: &[u8] = b"fog-compute access-token id v1:";

pub const ISSUER: &str = "fog-compute";
pub const AUDIENCE: &str = "fog-compute-api";
/// Clock skew allowed when checking `exp`: a token verifies until `exp` + this.
pub const LEEWAY_SECONDS: i64 = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub username: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// The session (login) the token belongs to; a token without one is refused.
    pub sid: Uuid,
    pub iss: String,
    pub aud: String,
    /// Whether the user was an administrator at login; only picks the rate-limit category.
    /// Authorisation always reads the user's current flag.
    #[serde(default)]
    pub adm: bool,
    /// When the session's user last proved their password (epoch s; OpenID Connect's claim): at
    /// login or reauthentication, kept by refreshes. Absent from tokens issued before it existed,
    /// which therefore count as too old for the actions that need a recent sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// How the session's user signed in (RFC 8176): `["pwd"]`, or `["pwd", "otp"]` with a second
    /// factor. Absent from tokens issued before it existed (a password alone).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The session's assurance level: `aal1` (a password), `aal2` (and a second factor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aal: Option<String>,
}

impl Claims {
    /// How the token's session was signed in to, as its `aal` says.
    pub fn assurance(&self) -> Assurance {
        Assurance::from_aal(self.aal.as_deref())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid access token: {0}")]
pub struct TokenError(#[from] jsonwebtoken::errors::Error);

/// Why an access token does not verify, as far as its holder is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFault {
    /// Signed with this API's key, but past `exp` and the leeway: the client may refresh.
    Expired,
    /// Anything else: malformed, another key or algorithm, wrong claims.
    Invalid,
}

impl TokenError {
    /// The signature is checked before the claims, so only a token this API signed is `Expired`.
    pub fn fault(&self) -> TokenFault {
        match self.0.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenFault::Expired,
            _ => TokenFault::Invalid,
        }
    }
}

/// When a token is issued, when its session's user last signed in, and how.
struct Signed {
    iat: i64,
    auth_time: i64,
    assurance: Assurance,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
}

/// Signs and verifies HS256 access tokens, and derives refresh-token successors. Built once per
/// cold start.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime_seconds: i64,
    /// HMAC-SHA256(JWT secret, SUCCESSOR_KEY_LABEL).
    successor_key: [u8; 32],
}

impl JwtKeys {
    /// The secret's length is checked by `Config`.
    pub fn new(secret: &SecretString, lifetime_minutes: i64) -> Self {
        let key = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS as u64;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            lifetime_seconds: lifetime_minutes * 60,
            successor_key: hmac_sha256(key, SUCCESSOR_KEY_LABEL),
        }
    }

    /// A new access token of `user` in session `sid`, whose password was verified `now` (a login,
    /// a reauthentication), signed in to with `assurance`, with an id of its own.
    pub fn issue(
        &self,
        user: &User,
        sid: Uuid,
        now: OffsetDateTime,
        assurance: Assurance,
    ) -> IssuedToken {
        let now = now.unix_timestamp();
        let signed = Signed {
            iat: now,
            auth_time: now,
            assurance,
        };
        self.sign(user, sid, signed, Uuid::new_v4())
    }

    /// The access token a rotation to `successor` issues at `rotated_at` (epoch seconds), with
    /// the session's `auth_time`: its id derived from the successor's hash, so that whoever
    /// recomputes the rotation inside its grace window gets this very token again.
    pub fn issue_rotated(
        &self,
        user: &User,
        sid: Uuid,
        rotated_at: i64,
        auth_time: i64,
        assurance: Assurance,
        successor: &RefreshTokenHash,
    ) -> IssuedToken {
        let digest = Sha256::new()
            .chain_update(ROTATION_JTI_LABEL)
            .chain_update(successor.as_str())
            .finalize();
        let bytes: [u8; 16] = digest[..16].try_into().expect("SHA-256 has 32 bytes");
        let jti = uuid::Builder::from_custom_bytes(bytes).into_uuid();
        let signed = Signed {
            iat: rotated_at,
            auth_time,
            assurance,
        };
        self.sign(user, sid, signed, jti)
    }

    /// The refresh token that succeeds `presented` at its rotation: the same session's, with the
    /// secret HMAC-SHA256(successor key, presented). Whoever presents the same token gets the same
    /// successor, and nobody without the JWT secret can compute it.
    pub fn refresh_successor(&self, presented: &RefreshToken) -> RefreshToken {
        let secret = hmac_sha256(&self.successor_key, presented.expose().as_bytes());
        RefreshToken::with_secret(presented.user_id(), presented.session_id(), &secret)
    }

    fn sign(&self, user: &User, sid: Uuid, signed: Signed, jti: Uuid) -> IssuedToken {
        let Signed {
            iat,
            auth_time,
            assurance,
        } = signed;
        let claims = Claims {
            sub: user.id,
            username: user.username.clone(),
            iat,
            exp: iat + self.lifetime_seconds,
            jti,
            sid,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            adm: user.is_admin,
            auth_time: Some(auth_time),
            amr: assurance
                .amr()
                .iter()
                .map(|&method| method.to_owned())
                .collect(),
            aal: Some(assurance.aal().to_owned()),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail");
        IssuedToken {
            token,
            expires_in: self.lifetime_seconds,
        }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        Ok(jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)?.claims)
    }

    /// An access token's lifetime.
    pub fn lifetime_seconds(&self) -> i64 {
        self.lifetime_seconds
    }
}

/// The username a bearer token states, read WITHOUT verifying the token: only to name what a
/// route reads first, in the rate limiter's round trip, for a token that is verified anyway
/// before the handler runs, and whose handler uses those items only if they are its verified
/// user's. Never to decide anything.
pub fn stated_username(token: &str) -> Option<String> {
    jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(token)
        .ok()
        .map(|claims| claims.username)
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, RefreshToken, Username};
    use jsonwebtoken::encode;
    use serde_json::json;

    const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

    fn jwt_keys() -> JwtKeys {
        JwtKeys::new(&SecretString::from(SECRET), 30)
    }

    fn user() -> User {
        User::new(
            &Username::parse("alice").unwrap(),
            &Email::parse("alice@example.com").unwrap(),
            OffsetDateTime::now_utc(),
        )
    }

    fn sign(claims: &serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn valid_claims() -> serde_json::Value {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "sub": Uuid::new_v4(), "username": "alice", "iat": now, "exp": now + 60,
            "jti": Uuid::new_v4(), "sid": Uuid::now_v7(), "iss": ISSUER, "aud": AUDIENCE,
        })
    }

    #[test]
    fn round_trip() {
        let user = user();
        let sid = Uuid::now_v7();
        let issued = jwt_keys().issue(&user, sid, OffsetDateTime::now_utc(), Assurance::Password);
        assert_eq!(issued.expires_in, 1800);
        let claims = jwt_keys().verify(&issued.token).unwrap();
        assert_eq!(claims.sub, user.id);
        assert_eq!(claims.sid, sid);
        assert_eq!(claims.username, "alice");
        assert_eq!(claims.exp - claims.iat, 1800);
        assert_eq!(claims.auth_time, Some(claims.iat), "a sign-in's own token");
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_str()),
            (ISSUER, AUDIENCE)
        );
    }

    /// Tokens issued before `auth_time` existed still verify (and count as signed in too long
    /// ago for the actions that need a recent sign-in).
    #[test]
    fn a_token_without_auth_time_verifies_without_one() {
        let claims = jwt_keys().verify(&sign(&valid_claims(), SECRET)).unwrap();
        assert_eq!(claims.auth_time, None);
    }

    #[test]
    fn the_stated_username_is_the_tokens_whatever_its_signature() {
        let issued = jwt_keys().issue(
            &user(),
            Uuid::now_v7(),
            OffsetDateTime::now_utc(),
            Assurance::Password,
        );
        assert_eq!(stated_username(&issued.token).as_deref(), Some("alice"));
        let forged = sign(&valid_claims(), "another-secret-of-at-least-32-bytes!!");
        assert_eq!(stated_username(&forged).as_deref(), Some("alice"));
        for garbage in ["", "a.b.c", "not a token"] {
            assert_eq!(stated_username(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn each_token_has_its_own_id() {
        let user = user();
        let now = OffsetDateTime::now_utc();
        let a = jwt_keys()
            .verify(
                &jwt_keys()
                    .issue(&user, Uuid::nil(), now, Assurance::Password)
                    .token,
            )
            .unwrap();
        let b = jwt_keys()
            .verify(
                &jwt_keys()
                    .issue(&user, Uuid::nil(), now, Assurance::Password)
                    .token,
            )
            .unwrap();
        assert_ne!(a.jti, b.jti);
    }

    #[test]
    fn the_hand_built_valid_token_is_accepted() {
        assert!(jwt_keys().verify(&sign(&valid_claims(), SECRET)).is_ok());
    }

    #[test]
    fn expired_tokens_are_refused_beyond_the_leeway() {
        let user = user();
        let an_hour_ago = OffsetDateTime::now_utc() - time::Duration::minutes(31);
        assert!(
            jwt_keys()
                .verify(
                    &jwt_keys()
                        .issue(&user, Uuid::nil(), an_hour_ago, Assurance::Password)
                        .token
                )
                .is_err()
        );
        let mut claims = valid_claims();
        claims["exp"] = json!(OffsetDateTime::now_utc().unix_timestamp() - 2);
        assert!(
            jwt_keys().verify(&sign(&claims, SECRET)).is_ok(),
            "within the leeway"
        );
        claims["exp"] = json!(OffsetDateTime::now_utc().unix_timestamp() - 30);
        assert!(jwt_keys().verify(&sign(&claims, SECRET)).is_err());
    }

    #[test]
    fn only_a_genuine_expired_token_is_said_to_have_expired() {
        let fault = |token: &str| {
            jwt_keys()
                .verify(token)
                .map(|_| ())
                .map_err(|error| error.fault())
        };
        let mut claims = valid_claims();
        claims["exp"] = json!(OffsetDateTime::now_utc().unix_timestamp() - 30);
        let expired = sign(&claims, SECRET);
        assert_eq!(fault(&expired), Err(TokenFault::Expired));
        assert_eq!(
            fault(&sign(&claims, "another-secret-that-is-at-least-32-bytes")),
            Err(TokenFault::Invalid),
            "an expired token of another key is no token of ours"
        );
        let mut parts: Vec<&str> = expired.split('.').collect();
        let tampered = base64_url(&json!({"exp": 1}).to_string());
        parts[1] = &tampered;
        assert_eq!(fault(&parts.join(".")), Err(TokenFault::Invalid));
        for garbage in ["", "garbage", "a.b.c"] {
            assert_eq!(fault(garbage), Err(TokenFault::Invalid), "{garbage:?}");
        }
        assert_eq!(fault(&sign(&valid_claims(), SECRET)), Ok(()));
    }

    #[test]
    fn another_key_is_refused() {
        let forged = sign(&valid_claims(), "another-secret-of-at-least-32-bytes!!");
        assert!(jwt_keys().verify(&forged).is_err());
    }

    #[test]
    fn alg_none_is_refused() {
        let header = base64_url(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = base64_url(&valid_claims().to_string());
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert!(jwt_keys().verify(&token).is_err());
        }
    }

    #[test]
    fn other_algorithms_are_refused() {
        let token = encode(
            &Header::new(Algorithm::HS512),
            &valid_claims(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(jwt_keys().verify(&token).is_err());
    }

    #[test]
    fn wrong_audience_or_issuer_is_refused() {
        let mut claims = valid_claims();
        claims["aud"] = json!("someone-else");
        assert!(jwt_keys().verify(&sign(&claims, SECRET)).is_err());
        let mut claims = valid_claims();
        claims["iss"] = json!("someone-else");
        assert!(jwt_keys().verify(&sign(&claims, SECRET)).is_err());
    }

    #[test]
    fn missing_required_claims_are_refused() {
        for claim in ["exp", "sub", "iss", "aud", "jti", "sid"] {
            let mut claims = valid_claims();
            claims.as_object_mut().unwrap().remove(claim);
            assert!(
                jwt_keys().verify(&sign(&claims, SECRET)).is_err(),
                "missing {claim} accepted"
            );
        }
    }

    #[test]
    fn tampered_claims_are_refused() {
        let token = sign(&valid_claims(), SECRET);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut claims = valid_claims();
        claims["username"] = json!("admin");
        parts[1] = base64_url(&claims.to_string());
        assert!(jwt_keys().verify(&parts.join(".")).is_err());
    }

    /// Issue 15: tokens from before sessions (no `sid`) are refused, so nothing outlives a
    /// logout or a password change by not naming its session.
    #[test]
    fn a_token_without_a_session_is_refused() {
        let mut claims = valid_claims();
        assert!(jwt_keys().verify(&sign(&claims, SECRET)).is_ok());
        claims.as_object_mut().unwrap().remove("sid");
        assert!(jwt_keys().verify(&sign(&claims, SECRET)).is_err());
    }

    #[test]
    fn a_rotation_issues_the_same_token_whenever_it_is_recomputed() {
        let (user, sid) = (user(), Uuid::now_v7());
        let presented = RefreshToken::generate(user.id, sid);
        let successor = jwt_keys().refresh_successor(&presented);
        assert_eq!(successor, jwt_keys().refresh_successor(&presented));
        assert_ne!(successor, presented);
        assert_eq!(
            (successor.user_id(), successor.session_id()),
            (user.id, sid)
        );
        let rotated_at = OffsetDateTime::now_utc().unix_timestamp();
        let signed_in = rotated_at - 3600;
        let rotate = |successor: &RefreshToken| {
            jwt_keys().issue_rotated(
                &user,
                sid,
                rotated_at,
                signed_in,
                Assurance::Password,
                &successor.hash(),
            )
        };
        let (first, again) = (rotate(&successor), rotate(&successor));
        assert_eq!(first.token, again.token);
        let claims = jwt_keys().verify(&first.token).unwrap();
        assert_eq!(
            (claims.iat, claims.sid, claims.auth_time),
            (rotated_at, sid, Some(signed_in))
        );
        // Another successor, another token id.
        let next = jwt_keys().refresh_successor(&successor);
        let other = rotate(&next);
        assert_ne!(jwt_keys().verify(&other.token).unwrap().jti, claims.jti);
    }

    #[test]
    fn successors_depend_on_the_secret() {
        let presented = RefreshToken::generate(Uuid::new_v4(), Uuid::now_v7());
        let other = JwtKeys::new(
            &SecretString::from("another-secret-of-at-least-32-bytes!!"),
            30,
        );
        assert_ne!(
            jwt_keys().refresh_successor(&presented),
            other.refresh_successor(&presented)
        );
    }

    /// The successor key is HMAC-SHA256(secret, label) and the successor's secret
    /// HMAC-SHA256(key, token): the same figures Python's hmac module computes.
    #[test]
    fn the_successor_is_the_documented_hmac() {
        let presented = RefreshToken::with_secret(Uuid::nil(), Uuid::nil(), &[0; 32]);
        let successor = jwt_keys().refresh_successor(&presented);
        let expected = RefreshToken::with_secret(
            Uuid::nil(),
            Uuid::nil(),
            &hex32("bb08b8d62649612a901056d526bc5d23961653f35cd2a4862c9e7f20df507505"),
        );
        assert_eq!(successor, expected);
    }

    fn hex32(hex: &str) -> [u8; 32] {
        let bytes: Vec<u8> = (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    fn base64_url(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }
}
