use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::User;

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
    pub iss: String,
    pub aud: String,
    /// Whether the user was an administrator at login; only picks the rate-limit category.
    /// Authorisation always reads the user's current flag.
    #[serde(default)]
    pub adm: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid access token: {0}")]
pub struct TokenError(#[from] jsonwebtoken::errors::Error);

pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
}

/// Signs and verifies HS256 access tokens. Built once per cold start.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime_seconds: i64,
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
        }
    }

    pub fn issue(&self, user: &User, now: OffsetDateTime) -> IssuedToken {
        let iat = now.unix_timestamp();
        let claims = Claims {
            sub: user.id,
            username: user.username.clone(),
            iat,
            exp: iat + self.lifetime_seconds,
            jti: Uuid::new_v4(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            adm: user.is_admin,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, Username};
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
            "jti": Uuid::new_v4(), "iss": ISSUER, "aud": AUDIENCE,
        })
    }

    #[test]
    fn round_trip() {
        let user = user();
        let issued = jwt_keys().issue(&user, OffsetDateTime::now_utc());
        assert_eq!(issued.expires_in, 1800);
        let claims = jwt_keys().verify(&issued.token).unwrap();
        assert_eq!(claims.sub, user.id);
        assert_eq!(claims.username, "alice");
        assert_eq!(claims.exp - claims.iat, 1800);
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_str()),
            (ISSUER, AUDIENCE)
        );
    }

    #[test]
    fn each_token_has_its_own_id() {
        let user = user();
        let now = OffsetDateTime::now_utc();
        let a = jwt_keys()
            .verify(&jwt_keys().issue(&user, now).token)
            .unwrap();
        let b = jwt_keys()
            .verify(&jwt_keys().issue(&user, now).token)
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
                .verify(&jwt_keys().issue(&user, an_hour_ago).token)
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
        for claim in ["exp", "sub", "iss", "aud", "jti"] {
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

    fn base64_url(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }
}
