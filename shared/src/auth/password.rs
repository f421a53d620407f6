use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::Password;
use crate::{ApiError, telemetry};

/// OWASP's argon2id parameters: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// The hash of a random password nobody knows, with the same parameters as real hashes. Login
/// verifies against it when the username does not exist, so that both failures take as long.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$cUJbXDGrcufBmZqpdic8+w$KWccSO2bdDmt4Iag/twGQmRvjmGGpCVrHZ0dGXxkw/c";

/// Allocations from this size up get mappings of their own (glibc's default starting threshold).
#[cfg(target_env = "gnu")]
const MMAP_THRESHOLD_BYTES: libc::c_int = 128 * 1024;

/// argon2id allocates its 19 MiB on whichever of Tokio's blocking threads runs it. After the
/// first free, glibc raises its mmap threshold above that size and serves the next ones from the
/// thread's own heap, which it keeps: each new blocking thread held on to another 19 MiB (162 MiB
/// peak RSS after 200 registrations in `make bench`). A fixed threshold keeps such blocks in
/// mappings of their own, returned to the system when freed. Call once, at start.
pub fn map_hash_memory_apart() {
    // SAFETY: mallopt only tunes the allocator, under malloc's own lock.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

fn argon2id() -> Argon2<'static> {
    let params =
        Params::new(MEMORY_KIB, PASSES, LANES, None).expect("constant parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of an argon2id hash, computed off the async executor.
pub async fn hash_password(password: Password) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|error| ApiError::Internal(error.to_string()))?;
        let salt =
            SaltString::encode_b64(&salt).map_err(|error| ApiError::Internal(error.to_string()))?;
        telemetry::costed("argon2id", "hash", || {
            argon2id().hash_password(password.expose().as_bytes(), &salt)
        })
        .map(|hash| hash.to_string())
        .map_err(|error| ApiError::Internal(format!("argon2 hashing failed: {error}")))
    })
    .await
    .map_err(|error| ApiError::Internal(format!("hashing task failed: {error}")))?
}

/// Whether `password` matches `stored_hash`; with no stored hash, does the same work against
/// the dummy hash and answers false.
pub async fn verify_password(password: SecretString, stored_hash: Option<String>) -> bool {
    let known_user = stored_hash.is_some();
    let hash = stored_hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
    let matches = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                telemetry::costed("argon2id", "verify", || {
                    argon2id().verify_password(password.expose_secret().as_bytes(), &parsed)
                })
                .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    known_user && matches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_round_trip() {
        let hash = hash_password(Password::parse("Correct-Horse-9").unwrap())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("Correct-Horse-9".into(), Some(hash.clone())).await);
        assert!(!verify_password("Correct-Horse-8".into(), Some(hash)).await);
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently() {
        let a = hash_password(Password::parse("Correct-Horse-9").unwrap())
            .await
            .unwrap();
        let b = hash_password(Password::parse("Correct-Horse-9").unwrap())
            .await
            .unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (MEMORY_KIB, PASSES, LANES)
        );
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        assert!(!verify_password("anything".into(), None).await);
    }
}
